metadata name = 'ISP Monitor hosting: Linux Consumption'
metadata description = 'The custom handler on a Linux Consumption (Y1) function app: its storage account (key-based, as Y1 requires), plan, app and FTP policy. Same outputs as infra/hosting-flex.bicep.'

// ============ //
//  Parameters  //
// ============ //

@description('Optional. Location of every resource.')
param location string = resourceGroup().location

@description('Optional. Tags for every resource.')
param tags object = {}

@description('Required. Name of the function app (globally unique; also its content share name, so a valid Azure Files share name: docs/platform.md §7).')
@minLength(2)
@maxLength(60)
param appName string

@description('Required. Name of the App Service plan.')
param planName string

@description('Required. Name of the storage account: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param storageName string

@description('Required. Name of the Application Insights component (in this resource group) the handler writes to.')
param appInsightsName string

@description('Optional. The function app\'s current WEBSITE_RUN_FROM_PACKAGE value, passed back by deploy.sh so that re-running the template never leaves the app without its package: a template deployment replaces every app setting (docs/platform.md §7). Empty: the setting is not written (first deployment). Secure because the URL carries a SAS token.')
@secure()
param currentPackageUrl string = ''

// ============ //
//  Variables   //
// ============ //

// Re-running the template replaces every app setting: the package URL goes back in when there is one.
var packageSettings = empty(currentPackageUrl) ? [] : [
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE'
    value: currentPackageUrl
  }
]

var storageConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${storage.listKeys().keys[0].value}'

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
    // checkov:skip=CKV_AZURE_206: locally redundant storage is enough for the Functions host's own files, which a redeployment recreates; no user data lives here.
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    // checkov:skip=CKV_AZURE_59: Linux Consumption (Y1) cannot join a virtual network, so its host reaches storage over the public endpoint (with the account key, HTTPS only).
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // checkov:skip=CKV_AZURE_35: same reason as CKV_AZURE_59: a deny-by-default firewall would lock the Y1 host out of its own storage.
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

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    // checkov:skip=CKV_AZURE_225: zone redundancy is not available on the Consumption plan; Y1 is chosen for its free monthly grant.
    name: 'Y1'
    tier: 'Dynamic'
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
    // checkov:skip=CKV_AZURE_212: Consumption scales instances on demand; a minimum instance count does not exist on Y1.
    // checkov:skip=CKV_AZURE_213: App Service health check is not available on Consumption; the Functions host probes the handler (GET /) itself.
    // checkov:skip=CKV_AZURE_222: agents on home connections post heartbeats over the internet: public access is the product.
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    // checkov:skip=CKV_AZURE_17: agents on home networks have no client certificates to present.
    clientCertEnabled: false
    siteConfig: {
      // Custom handlers on Linux Consumption: no language stack.
      linuxFxVersion: ''
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: concat([
        {
          name: 'AzureWebJobsStorage'
          value: storageConnectionString
        }
        {
          // Y1 needs key-based Azure Files for its content share (no managed-identity option).
          name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
          value: storageConnectionString
        }
        {
          name: 'WEBSITE_CONTENTSHARE'
          value: toLower(appName)
        }
        {
          name: 'FUNCTIONS_EXTENSION_VERSION'
          value: '~4'
        }
        {
          name: 'FUNCTIONS_WORKER_RUNTIME'
          value: 'custom'
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
      ], packageSettings)
    }
  }
}

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
