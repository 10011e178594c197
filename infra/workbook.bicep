metadata name = 'ISP Monitor workbook'
metadata description = 'A shared Azure Monitor workbook over Application Insights: a markdown introduction followed by one query panel per object of `panels`.'

// ============ //
//  Parameters  //
// ============ //

@description('Optional. Location of the workbook.')
param location string = resourceGroup().location

@description('Optional. Tags for every resource.')
param tags object = {}

@description('Required. Name of the workbook (a GUID).')
param name string

@description('Required. Display name of the workbook in the portal.')
param displayName string

@description('Required. Resource ID of the Application Insights component the panels query.')
param appInsightsId string

@description('Optional. Markdown shown above the panels.')
param introMarkdown string = ''

@description('Optional. The query panels, in order: objects with name, title, query (KQL), size (0 normal, 4 compact), durationMs (time range) and visualization (table, timechart, ...).')
param panels array = []

// ============ //
//  Variables   //
// ============ //

var panelItems = [for p in panels: {
  type: 3
  name: p.name
  content: {
    version: 'KqlItem/1.0'
    title: p.title
    query: p.query
    size: p.size
    timeContext: {
      durationMs: p.durationMs
    }
    queryType: 0
    resourceType: 'microsoft.insights/components'
    visualization: p.visualization
  }
}]

var workbookContent = {
  version: 'Notebook/1.0'
  items: concat([
    {
      type: 1
      name: 'intro'
      content: {
        json: introMarkdown
      }
    }
  ], panelItems)
  fallbackResourceIds: [
    appInsightsId
  ]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

// ============ //
//  Resources   //
// ============ //

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    // Lower-cased: the portal links a workbook to its resource by a case-sensitive id (docs/platform.md §7).
    sourceId: toLower(appInsightsId)
    version: 'Notebook/1.0'
    serializedData: string(workbookContent)
  }
}

// ============ //
//  Outputs     //
// ============ //

@description('The resource ID of the workbook.')
output workbookId string = workbook.id
