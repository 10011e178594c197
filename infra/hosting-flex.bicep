metadata name = 'ISP Monitor hosting: Flex Consumption'
metadata description = 'The custom handler on a Flex Consumption (FC1) function app: its storage account (identity only, no shared key), the deployment container, plan, app, the app identity\'s storage roles and FTP policy. Same outputs as infra/hosting-consumption.bicep. Every property: docs/platform.md §10.'

// ============ //
//  Parameters  //
// ============ //

@description('Optional. Location of every resource (a region that offers Flex Consumption: `az functionapp list-flexconsumption-locations`).')
param location string = resourceGroup().location

@description('Optional. Tags for every resource.')
param tags object = {}

@description('Required. Name of the function app (globally unique).')
@minLength(2)
@maxLength(60)
param appName string

@description('Required. Name of the App Service plan (a Flex plan holds one app; docs/platform.md §10).')
param planName string

@description('Required. Name of the storage account: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param storageName string

@description('Required. Name of the Application Insights component (in this resource group) the handler writes to.')
param appInsightsName string

@description('Optional. Memory of each instance in MB. 512 is the smallest: a heartbeat bills at least 1 s of it, so the smallest size is the cheapest (docs/platform.md §10).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 512

@description('Optional. Most instances the app scales out to; the bound on a flood\'s cost. 40 is the lowest Microsoft\'s sample accepts for HTTP apps (docs/platform.md §10).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Optional. Always-ready instances of the HTTP group: no cold start, but each is billed all month (about $5.18 at 512 MB) and its executions leave the free grant (docs/platform.md §10). 0: none.')
@minValue(0)
@maxValue(10)
param alwaysReadyInstances int = 0

// ============ //
//  Variables   //
// ============ //

// The package container (docs/platform.md §10): the deployment uploads the zip here.
var deploymentContainerName = 'app-package'

// Built-in roles the app's identity needs on its storage account, as Microsoft's sample grants them
// (docs/platform.md §10): blob (the package and the host's blobs), queue and table.
var storageRoles = [
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
]

var alwaysReady = (alwaysReadyInstances > 0) ? [
  {
    name: 'http'
    instanceCount: alwaysReadyInstances
  }
] : []

// ============ //
//  Resources   //
// ============ //

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is computed (lower-cased prefix without hyphens + uniqueString, cut to 24), which checkov cannot evaluate; tests/infra asserts the expression.
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    // checkov:skip=CKV_AZURE_206: locally redundant storage is enough for the Functions host's own files and the package, which a redeployment recreates; no user data lives here.
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Everything reaches this account with the app's identity (docs/platform.md §10): no keys.
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    // checkov:skip=CKV_AZURE_59: this project adds no virtual network (Flex could join one, at the price of a VNet and private endpoints), so the host reaches its storage over the public endpoint, with its identity only (shared keys are off).
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_35: same reason as CKV_AZURE_59: without a virtual network, a deny-by-default firewall would lock the Flex host out of its own storage.
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    // checkov:skip=CKV_AZURE_225: zone redundancy on Flex needs at least two always-ready instances per group (billed all month); one home monitor does not warrant it.
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // checkov:skip=CKV_AZURE_212: a minimum instance count is Flex's always-ready setting (alwaysReadyInstances), off by default because each instance is billed all month.
    // checkov:skip=CKV_AZURE_213: App Service health check is not used on Flex Consumption; the Functions host probes the handler (GET /) itself.
    // checkov:skip=CKV_AZURE_222: agents on home connections post heartbeats over the internet: public access is the product.
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    // checkov:skip=CKV_AZURE_17: agents on home networks have no client certificates to present.
    clientCertEnabled: false
    // Flex: runtime, package and scale live here, not in app settings (docs/platform.md §10).
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReady
      }
    }
    siteConfig: {
      // No linuxFxVersion and none of the settings Flex does not take (docs/platform.md §10).
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: [
        // The host's own storage, by the app's identity (docs/platform.md §10).
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: 'https://${storage.name}.blob.${environment().suffixes.storage}'
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: 'https://${storage.name}.queue.${environment().suffixes.storage}'
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: 'https://${storage.name}.table.${environment().suffixes.storage}'
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
      ]
    }
  }
}

// The app's identity on its storage account, one assignment per role (docs/platform.md §10).
resource storageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoles: {
  name: guid(storage.id, app.id, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

// ============ //
//  Outputs     //
// ============ //

@description('The name of the function app.')
output functionAppName string = app.name

@description('The resource ID of the function app.')
output functionAppId string = app.id

@description('The host name of the function app.')
output defaultHostName string = app.properties.defaultHostName

@description('The heartbeat URL agents POST to.')
output heartbeatUrl string = 'https://${app.properties.defaultHostName}/api/ping'

@description('The principal ID of the function app\'s system-assigned identity.')
output principalId string = app.identity.principalId

@description('The name of the storage account the Functions host uses.')
output storageAccountName string = storage.name
