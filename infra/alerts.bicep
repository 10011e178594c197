metadata name = 'ISP Monitor alerts'
metadata description = 'The action group (email, optional SMS and webhook) and one log search alert rule (scheduledQueryRules) per object of `rules` whose `deploy` is true. The rule object is described above `alertRules` in main.bicep.'

// ============ //
//  Parameters  //
// ============ //

@description('Optional. Location of the alert rules (the action group is always global).')
param location string = resourceGroup().location

@description('Optional. Tags for every resource.')
param tags object = {}

@description('Required. Name of the action group.')
param actionGroupName string

@description('Required. Short name of the action group (at most 12 characters; it appears in SMS and emails).')
@minLength(1)
@maxLength(12)
param actionGroupShortName string

@description('Required. Email address that receives every alert (an action group accepts at most 64 characters; docs/platform.md §7).')
@minLength(3)
@maxLength(64)
param alertEmail string

@description('Optional. Country code of the phone that also receives alerts by SMS. Used only when smsPhoneNumber is set.')
@maxLength(4)
param smsCountryCode string = '1'

@description('Optional. Phone number (without country code) that also receives alerts by SMS. Empty: no SMS receiver.')
@maxLength(20)
param smsPhoneNumber string = ''

@description('Optional. HTTPS URL that also receives every alert as a webhook (common alert schema). Empty: no webhook receiver. Secure because such URLs often carry a token.')
@secure()
param alertWebhookUrl string = ''

@description('Required. Resource ID of the Application Insights component the rules query.')
param scopeId string

@description('Optional. The alert rules, one object each (fields: see `alertRules` in main.bicep). Empty: no rule.')
param rules array = []

// ============ //
//  Variables   //
// ============ //

var emailReceivers = [
  {
    name: 'owner-email'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]
var smsReceivers = empty(smsPhoneNumber) ? [] : [
  {
    name: 'owner-sms'
    countryCode: smsCountryCode
    phoneNumber: smsPhoneNumber
  }
]
var webhookReceivers = empty(alertWebhookUrl) ? [] : [
  {
    name: 'owner-webhook'
    serviceUri: alertWebhookUrl
    useCommonAlertSchema: true
  }
]

// ============ //
//  Resources   //
// ============ //

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: actionGroupShortName
    enabled: true
    emailReceivers: emailReceivers
    smsReceivers: smsReceivers
    webhookReceivers: webhookReceivers
  }
}

// One rule per object. A null measureColumn (row count) or timeToResolve (a stateless rule) leaves
// that property unset: Resource Manager sends no value for a null property.
resource rule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for r in rules: if (r.deploy) {
  name: r.name
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: r.displayName
    description: r.description
    severity: r.severity
    // The object's off switch: a disabled rule stays deployed and evaluates nothing.
    enabled: r.enabled
    scopes: [
      scopeId
    ]
    evaluationFrequency: r.frequency
    windowSize: r.frequency
    // A query can see at most 2 days; every query looks back as far (ago(2d)).
    overrideQueryTimeRange: 'P2D'
    autoMitigate: r.autoMitigate
    ruleResolveConfiguration: empty(r.timeToResolve) ? null : {
      autoResolved: true
      timeToResolve: r.timeToResolve
    }
    criteria: {
      allOf: [
        {
          query: r.query
          timeAggregation: r.aggregation
          metricMeasureColumn: r.measureColumn
          // One time series (and one alert) per value of each dimension column.
          dimensions: [for column in r.dimensions: {
            name: column
            operator: 'Include'
            values: [
              '*'
            ]
          }]
          operator: r.operator
          threshold: r.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

// ============ //
//  Outputs     //
// ============ //

@description('The resource ID of the action group.')
output actionGroupId string = actionGroup.id

@description('The names of the deployed alert rules, in the order of `rules`.')
output ruleNames array = [for r in filter(rules, x => x.deploy): r.name]
