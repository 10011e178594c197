metadata name = 'ISP Monitor'
metadata description = 'The Azure side of ISP Monitor, composed of the modules in infra/: the custom handler on a Linux Consumption (Y1, the default) or Flex Consumption (FC1) function app, Application Insights on a Log Analytics workspace, per-device silence alerts (fired and resolved per device), reminders while a device stays silent, an email per reported outage (its cause in words), a degraded-connection alert per device, an email per public-IP change, and a workbook. Queries live in queries/*.kql (loaded verbatim; see docs/queries.md).'

// ============ //
//  Parameters  //
// ============ //

@description('Optional. Location for every resource except the action group (which is always global).')
param location string = resourceGroup().location

@description('Optional. Prefix of every resource name: 2-10 lower-case letters, digits or hyphens, starting with a letter or digit, not ending in a hyphen and without two hyphens in a row (the content share name `<prefix>-<suffix>` must be a valid Azure Files share name; docs/platform.md §7). Bicep cannot check a pattern: deploy.sh does. Globally unique names add uniqueString(resourceGroup().id).')
@minLength(2)
@maxLength(10)
param namePrefix string = 'ispmon'

@description('Required. Email address that receives the alerts and outage reports (an action group accepts at most 64 characters; docs/platform.md §7).')
@minLength(3)
@maxLength(64)
param alertEmail string

@description('Optional. Country code of the phone that also receives alerts by SMS (e.g. 1 or 44). SMS is sent only when smsPhoneNumber is set.')
@maxLength(4)
param smsCountryCode string = '1'

@description('Optional. Phone number (without country code) that also receives alerts by SMS. Empty: no SMS receiver.')
@maxLength(20)
param smsPhoneNumber string = ''

@description('Optional. HTTPS URL that also receives every alert as a webhook (common alert schema). Empty: no webhook receiver. Secure because such URLs often carry a token.')
@secure()
param alertWebhookUrl string = ''

@description('Optional. A device that has sent no heartbeat for this many minutes is reported silent. Keep it at least twice the agent\'s heartbeat interval.')
@minValue(2)
@maxValue(1440)
param silenceMinutes int = 5

@description('Optional. How often, in minutes, the silence rule runs. 1 minute is fastest and costs most; see docs/alerts.md for the delays and monthly price of each choice.')
@allowed([
  1
  5
  10
  15
])
param silenceEvaluationMinutes int = 5

@description('Optional. While a device stays silent, a reminder is emailed every this many minutes (a second, stateless rule). 0 turns reminders off.')
@allowed([
  0
  5
  10
  15
  30
  60
])
param reminderMinutes int = 15

@description('Optional. How often, in minutes, newly reported outages are looked for and emailed.')
@allowed([
  5
  10
  15
  30
  60
])
param outageReportMinutes int = 15

@description('Optional. Degraded-connection alert (per device, stateful): false disables the rule (it stays deployed, disabled, so a redeployment with false turns an existing rule off).')
param degradedAlertEnabled bool = true

@description('Optional. A heartbeat is degraded when its connection loss is above this percentage (the agent\'s quality probes; docs/alerts.md).')
@minValue(0)
@maxValue(99)
param degradedLossPct int = 5

@description('Optional. A heartbeat is degraded when its p95 connect time to the probe targets is above this many milliseconds.')
@minValue(1)
@maxValue(60000)
param degradedRttP95Ms int = 200

@description('Optional. N: the degraded alert looks at each device\'s last N heartbeats that carry quality.')
@minValue(1)
@maxValue(60)
param degradedOfLast int = 10

@description('Optional. M: the degraded alert fires when at least M of the last N heartbeats are degraded (M above N counts as N).')
@minValue(1)
@maxValue(60)
param degradedAtLeast int = 5

@description('Optional. Public-IP-change alert (one notification per change per device): false disables the rule (it stays deployed, disabled, so a redeployment with false turns an existing rule off).')
param ipChangeAlertEnabled bool = true

@description('Optional. Days the Log Analytics workspace keeps telemetry (30 is included in the ingestion price).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Optional. Tags for every resource.')
param tags object = {}

// What deploy.sh passes (from .env): hostingPlan from HOSTING_PLAN; flex* only when the plan is
// flex (they have safe defaults); currentPackageUrl only on Consumption, never on Flex (Flex keeps its
// package in the deployment container, and the Flex module takes no such setting; docs/platform.md §10).

@description('Optional. Where the handler runs: \'consumption\' (Linux Consumption, Y1: free monthly grant; legacy, retired 30 Sep 2028) or \'flex\' (Flex Consumption, FC1: its successor). Both plans use the same resource names, so an existing app cannot switch in place (deploy.sh refuses): deploy the other plan with another namePrefix or resource group; docs/deploy.md explains moving.')
@allowed([
  'consumption'
  'flex'
])
param hostingPlan string = 'consumption'

@description('Optional. Flex only: memory of each instance in MB. 512, the smallest, is the cheapest: every execution bills at least 1 s of it (docs/platform.md §10).')
@allowed([
  512
  2048
  4096
])
param flexInstanceMemoryMB int = 512

@description('Optional. Flex only: the most instances the app scales out to (bounds the cost of a flood; docs/platform.md §10).')
@minValue(40)
@maxValue(1000)
param flexMaximumInstanceCount int = 40

@description('Optional. Flex only: always-ready instances (no cold start; each billed all month, about $5.18 at 512 MB, and without free grant; docs/platform.md §10). 0: none.')
@minValue(0)
@maxValue(10)
param flexAlwaysReadyInstances int = 0

@description('Optional. Consumption only: the function app\'s current WEBSITE_RUN_FROM_PACKAGE value (the package URL the zip deployment set), passed back by deploy.sh so that re-running the template never leaves the app without its package: a template deployment replaces every app setting (docs/platform.md §7). Empty: the setting is not written (first deployment). Ignored on Flex. Secure because the URL carries a SAS token.')
@secure()
param currentPackageUrl string = ''

// ============ //
//  Variables   //
// ============ //

var suffix = uniqueString(resourceGroup().id)
var appName = '${namePrefix}-${suffix}'
// Storage account names: 3-24 lower-case letters and digits, globally unique.
var storageName = take('${replace(toLower(namePrefix), '-', '')}${suffix}', 24)
// The action group short name is at most 12 characters whatever the prefix.
var actionGroupShortName = take('${namePrefix}-isp', 12)

// The Azure Monitor rule properties are ISO 8601 durations; every allowed minute value maps here.
var isoMinutes = {
  '1': 'PT1M'
  '5': 'PT5M'
  '10': 'PT10M'
  '15': 'PT15M'
  '30': 'PT30M'
  '60': 'PT1H'
}

// Queries: the same text is deployed, tested (tests/infra) and shown in docs/queries.md.
var silenceQuery = loadTextContent('queries/silence-alert.kql')
// The outage-report window is the rule's frequency: the file's window line is replaced, with the
// minutes as a timespan literal (log search alerts accept ago() with literals only; docs/platform.md §7).
var outageWindowLine = '| where first_ingested > ago(15m)'
var outageReportQuery = replace(loadTextContent('queries/outage-report.kql'), outageWindowLine, '| where first_ingested > ago(${outageReportMinutes}m)')

// The degraded rule's thresholds go into its query's `let` lines (docs/alerts.md "Degraded connection").
// M above N counts as N.
var degradedAtLeastOfLast = min(degradedAtLeast, degradedOfLast)
var degradedQueryText = loadTextContent('queries/degraded-alert.kql')
var degradedQueryLimits = replace(replace(degradedQueryText, 'let loss_limit = 5.0;', 'let loss_limit = ${degradedLossPct}.0;'), 'let rtt_limit = 200.0;', 'let rtt_limit = ${degradedRttP95Ms}.0;')
var degradedQuery = replace(replace(degradedQueryLimits, 'let of_last = 10;', 'let of_last = ${degradedOfLast};'), 'let at_least = 5;', 'let at_least = ${degradedAtLeastOfLast};')
// The two quality/address rules run every 15 minutes (the cheapest frequency with per-device
// notice well inside the hour; docs/alerts.md "Cost"); the IP query's window is that frequency.
var qualityRulesMinutes = 15
var ipChangeQuery = loadTextContent('queries/ip-change-alert.kql')

// A fired silence alert resolves once the rule has evaluated healthy this long: chosen here
// (ruleResolveConfiguration, docs/platform.md §7) instead of inherited from the frequency (10 minutes
// at 1 minute, 3 periods at 5-15 minutes). 10 minutes, or one period when that is longer, so a
// connection that flaps within minutes does not send Resolved and Fired again and again.
var resolveMinutes = max(silenceEvaluationMinutes, 10)

var isFlex = hostingPlan == 'flex'

// The alert rules: infra/alerts.bicep deploys one log search alert rule (scheduledQueryRules,
// API 2023-12-01) per object whose `deploy` is true. To add a rule, append an object. Every field
// is required (use null where null is allowed):
//   name           string       resource name: '${namePrefix}-<what>-${suffix}'
//   deploy         bool         false: not deployed, and absent from the alertRuleNames output
//   enabled        bool         false: deployed but disabled (an off switch that also turns off a rule
//                                deployed before: deploy.sh deploys incrementally, which never deletes)
//   displayName    string       shown in the portal and the email subject
//   description    string       shown in the email
//   severity       int          0 (critical) to 4 (verbose)
//   frequency      string       ISO 8601 duration (isoMinutes[...]): evaluationFrequency and windowSize
//   query          string       KQL, loadTextContent('queries/<file>.kql'); it may look back 2 days
//                                (overrideQueryTimeRange is P2D) and must use ago() with literals only
//   aggregation    string       timeAggregation: 'Count' (rows), 'Maximum', 'Minimum', 'Average', 'Total'
//   measureColumn  string|null  metricMeasureColumn: the column aggregated; null with 'Count'
//   dimensions     array        result columns that split the rule into one time series (and one alert)
//                                per value combination; at most 6; each is written as Include '*'
//   operator       string       'GreaterThan', 'GreaterThanOrEqual', 'LessThan', 'LessThanOrEqual', 'Equals'
//   threshold      int          compared with the aggregated measure
//   autoMitigate   bool         true: stateful (fires once per dimension value, then sends Resolved);
//                                false: stateless (notifies on every evaluation whose condition holds)
//   timeToResolve  string|null  with autoMitigate: ISO 8601 time healthy before Resolved
//                                (ruleResolveConfiguration); null: not set
var alertRules = [
  // Fires once per device when it has been silent for silenceMinutes, and sends Resolved once when
  // its heartbeats return (stateful: autoMitigate, no mute). One time series per device.
  {
    name: '${namePrefix}-device-silent-${suffix}'
    deploy: true
    enabled: true
    displayName: 'ISP Monitor: device silent'
    description: 'A device has sent no heartbeat for ${silenceMinutes} minutes or more. Resolves on its own when its heartbeats return.'
    severity: 1
    frequency: isoMinutes[string(silenceEvaluationMinutes)]
    query: silenceQuery
    aggregation: 'Maximum'
    measureColumn: 'minutes_silent'
    dimensions: [
      'device'
    ]
    operator: 'GreaterThanOrEqual'
    threshold: silenceMinutes
    autoMitigate: true
    timeToResolve: isoMinutes[string(resolveMinutes)]
  }
  // A stateful rule never repeats, so reminders come from a second, stateless rule over the same
  // rows: it fires on every evaluation (every reminderMinutes) while a device has been silent for at
  // least silenceMinutes + reminderMinutes, so the first reminder follows the silence alert by one
  // interval.
  {
    name: '${namePrefix}-device-still-silent-${suffix}'
    deploy: reminderMinutes > 0
    enabled: true
    displayName: 'ISP Monitor: device still silent (reminder)'
    description: 'Reminder every ${reminderMinutes} minutes while a device stays silent.'
    severity: 2
    // max(): with reminderMinutes 0 the rule is not deployed, but the lookup must still be valid.
    frequency: isoMinutes[string(max(reminderMinutes, 5))]
    query: silenceQuery
    aggregation: 'Maximum'
    measureColumn: 'minutes_silent'
    dimensions: [
      'device'
    ]
    operator: 'GreaterThanOrEqual'
    threshold: silenceMinutes + reminderMinutes
    autoMitigate: false
    timeToResolve: null
  }
  // One notification per outage an agent reports (the Outage customEvents), carrying device, start,
  // end, duration and the cause in words (and its code) as dimensions: dimensions are what the email
  // shows (custom properties are not in emails; docs/platform.md §15). Six is Azure's maximum.
  {
    name: '${namePrefix}-outage-report-${suffix}'
    deploy: true
    enabled: true
    displayName: 'ISP Monitor: outage report'
    description: 'A device reported a finished outage. The dimensions say which device, when it started and ended (UTC), how many minutes it lasted, and its cause in words (cause_code is the agent\'s code). Only an internet-provider or name-resolution cause counts as the ISP\'s downtime.'
    severity: 3
    frequency: isoMinutes[string(outageReportMinutes)]
    query: outageReportQuery
    aggregation: 'Count'
    measureColumn: null
    dimensions: [
      'device'
      'start_utc'
      'end_utc'
      'duration_minutes'
      'cause'
      'cause_code'
    ]
    operator: 'GreaterThan'
    threshold: 0
    autoMitigate: false
    timeToResolve: null
  }
  // Degraded connection, per device (stateful): fires when at least M (degradedAtLeast) of a device's
  // last N (degradedOfLast) heartbeats had loss or p95 connect time above the limits; the query keeps
  // it degraded until N heartbeats in a row are good (hysteresis), and the rule resolves after two
  // healthy evaluations (30 minutes).
  {
    name: '${namePrefix}-degraded-${suffix}'
    deploy: true
    enabled: degradedAlertEnabled
    displayName: 'ISP Monitor: connection degraded'
    description: 'A device\'s connection is degraded: in at least ${degradedAtLeastOfLast} of its last ${degradedOfLast} heartbeats the agent measured more than ${degradedLossPct}% loss or a p95 connect time above ${degradedRttP95Ms} ms. Resolves on its own once ${degradedOfLast} heartbeats in a row are within both limits.'
    severity: 2
    frequency: isoMinutes[string(qualityRulesMinutes)]
    query: degradedQuery
    aggregation: 'Maximum'
    measureColumn: 'degraded'
    dimensions: [
      'device'
    ]
    operator: 'GreaterThanOrEqual'
    threshold: 1
    autoMitigate: true
    timeToResolve: isoMinutes[string(2 * qualityRulesMinutes)]
  }
  // Public IP change: one notification per change per device (stateless), with the old and the new
  // address and the time of the first heartbeat from the new one as dimensions (shown in the email).
  {
    name: '${namePrefix}-ip-change-${suffix}'
    deploy: true
    enabled: ipChangeAlertEnabled
    displayName: 'ISP Monitor: public IP address changed'
    description: 'A device\'s public IP address (as the endpoint saw it) changed: old_ip is the address before, new_ip the address after, changed_at (UTC) the time of the first heartbeat from the new address.'
    severity: 3
    frequency: isoMinutes[string(qualityRulesMinutes)]
    query: ipChangeQuery
    aggregation: 'Count'
    measureColumn: null
    dimensions: [
      'device'
      'old_ip'
      'new_ip'
      'changed_at'
    ]
    operator: 'GreaterThan'
    threshold: 0
    autoMitigate: false
    timeToResolve: null
  }
]

// The workbook's query panels, in order (infra/workbook.bicep puts the introduction above them).
var workbookIntro = '## ISP Monitor\nHeartbeats, outages, uptime, round-trip time and public IP changes per device. A heartbeat is a `requests` row named `Ping` written by the handler (`customDimensions.emitter == "isp-monitor-handler"`) with `success == true`.'
var workbookPanels = [
  {
    name: 'devices-now'
    title: 'Devices now: minutes silent (as the silence alert counts them)'
    query: silenceQuery
    size: 4
    durationMs: 172800000
    visualization: 'table'
  }
  {
    name: 'heartbeat-timeline'
    title: 'Heartbeats per device (last 24 hours, 5-minute bins)'
    query: loadTextContent('queries/heartbeat-timeline.kql')
    size: 0
    durationMs: 86400000
    visualization: 'timechart'
  }
  {
    name: 'outages'
    title: 'Reported outages (last 30 days)'
    query: loadTextContent('queries/outages.kql')
    size: 0
    durationMs: 2592000000
    visualization: 'table'
  }
  {
    name: 'uptime'
    title: 'Uptime % (24 hours, 7 days, 30 days)'
    query: loadTextContent('queries/uptime.kql')
    size: 4
    durationMs: 2592000000
    visualization: 'table'
  }
  {
    name: 'round-trip-time'
    title: 'Round-trip time, ms (last 7 days, 15-minute bins)'
    query: loadTextContent('queries/round-trip-time.kql')
    size: 0
    durationMs: 604800000
    visualization: 'timechart'
  }
  {
    name: 'public-ip'
    title: 'Public IP addresses (last 30 days): each new row is a change'
    query: loadTextContent('queries/public-ip.kql')
    size: 0
    durationMs: 2592000000
    visualization: 'table'
  }
]

// ============ //
//  Resources   //
// ============ //

module monitoring 'infra/monitoring.bicep' = {
  name: '${namePrefix}-monitoring'
  params: {
    location: location
    tags: tags
    workspaceName: '${namePrefix}-log-${suffix}'
    appInsightsName: '${namePrefix}-appi-${suffix}'
    retentionInDays: retentionInDays
  }
}

// One of the two hosting modules is deployed; both have the same outputs.
module hostingConsumption 'infra/hosting-consumption.bicep' = if (!isFlex) {
  name: '${namePrefix}-hosting-consumption'
  params: {
    location: location
    tags: tags
    appName: appName
    planName: '${namePrefix}-plan-${suffix}'
    storageName: storageName
    appInsightsName: monitoring.outputs.appInsightsName
    currentPackageUrl: currentPackageUrl
  }
}

module hostingFlex 'infra/hosting-flex.bicep' = if (isFlex) {
  name: '${namePrefix}-hosting-flex'
  params: {
    location: location
    tags: tags
    appName: appName
    planName: '${namePrefix}-plan-${suffix}'
    storageName: storageName
    appInsightsName: monitoring.outputs.appInsightsName
    instanceMemoryMB: flexInstanceMemoryMB
    maximumInstanceCount: flexMaximumInstanceCount
    alwaysReadyInstances: flexAlwaysReadyInstances
  }
}

module alerts 'infra/alerts.bicep' = {
  name: '${namePrefix}-alerts'
  params: {
    location: location
    tags: tags
    actionGroupName: '${namePrefix}-alerts-${suffix}'
    actionGroupShortName: actionGroupShortName
    alertEmail: alertEmail
    smsCountryCode: smsCountryCode
    smsPhoneNumber: smsPhoneNumber
    alertWebhookUrl: alertWebhookUrl
    scopeId: monitoring.outputs.appInsightsId
    rules: alertRules
  }
}

module workbook 'infra/workbook.bicep' = {
  name: '${namePrefix}-workbook'
  params: {
    location: location
    tags: tags
    name: guid(resourceGroup().id, namePrefix, 'isp-monitor-workbook')
    displayName: 'ISP Monitor (${namePrefix})'
    appInsightsId: monitoring.outputs.appInsightsId
    introMarkdown: workbookIntro
    panels: workbookPanels
  }
}

// ============ //
//  Outputs     //
// ============ //

@description('The name of the function app (deploy the handler package to it).')
output functionAppName string = isFlex ? hostingFlex!.outputs.functionAppName : hostingConsumption!.outputs.functionAppName

@description('The heartbeat URL agents POST to.')
output heartbeatUrl string = isFlex ? hostingFlex!.outputs.heartbeatUrl : hostingConsumption!.outputs.heartbeatUrl

@description('The name of the Application Insights component that holds the telemetry.')
output appInsightsName string = monitoring.outputs.appInsightsName

@description('The name of the Log Analytics workspace behind Application Insights.')
output workspaceName string = monitoring.outputs.workspaceName

@description('The resource ID of the workbook (dashboard).')
output workbookId string = workbook.outputs.workbookId

@description('The names of the alert rules (the reminder rule is absent when reminderMinutes is 0).')
output alertRuleNames array = alerts.outputs.ruleNames

@description('The hosting plan the function app runs on: consumption or flex.')
output hostingPlan string = hostingPlan
