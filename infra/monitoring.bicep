metadata name = 'ISP Monitor monitoring'
metadata description = 'A Log Analytics workspace and the workspace-based Application Insights component the handler writes its telemetry to.'

// ============ //
//  Parameters  //
// ============ //

@description('Optional. Location of both resources.')
param location string = resourceGroup().location

@description('Optional. Tags for every resource.')
param tags object = {}

@description('Required. Name of the Log Analytics workspace.')
@minLength(4)
@maxLength(63)
param workspaceName string

@description('Required. Name of the Application Insights component.')
@minLength(1)
@maxLength(260)
param appInsightsName string

@description('Optional. Days the workspace keeps telemetry (30 is included in the ingestion price).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

// ============ //
//  Resources   //
// ============ //

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    // The exporter (opentelemetry-application-insights) authenticates with the instrumentation key
    // only; Entra-only ingestion (DisableLocalAuth) would drop every heartbeat.
    DisableLocalAuth: false
  }
}

// ============ //
//  Outputs     //
// ============ //

@description('The name of the Log Analytics workspace.')
output workspaceName string = workspace.name

@description('The resource ID of the Log Analytics workspace.')
output workspaceId string = workspace.id

@description('The name of the Application Insights component.')
output appInsightsName string = appInsights.name

@description('The resource ID of the Application Insights component.')
output appInsightsId string = appInsights.id
