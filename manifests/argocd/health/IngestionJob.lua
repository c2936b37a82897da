-- ArgoCD health of a lakeop IngestionJob (lakeop.io/v1alpha1), from status.phase.
-- Suspended: spec.suspend or phase Suspended. Healthy: a one-off run Succeeded; a scheduled
-- job whose last run did not fail, also while its next run is queued or running (like a
-- CronJob, a schedule must not flap to Progressing on every tick and hold up sync waves).
-- Degraded: Failed, or a scheduled job whose last run failed. Progressing: a one-off that is
-- Pending, Queued or Running; no status yet; spec not yet observed.
-- ArgoCD runs this under gopher-lua (Lua 5.1).
local hs = {status = "Progressing", message = "Waiting for the lakeop operator"}
local spec = obj.spec or {}
local status = obj.status
if spec.suspend == true and (status == nil or status.phase ~= "Running") then
  hs.status = "Suspended"
  hs.message = "Suspended (spec.suspend is true)"
  return hs
end
if status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local last = status.lastRun
local function last_error()
  if last ~= nil and type(last.error) == "table" then
    return (last.error.reason or "Failed") .. ": " .. (last.error.message or "")
  end
  return nil
end
local function rows()
  if last ~= nil and last.rowsWritten ~= nil then
    return " (" .. last.rowsWritten .. " rows written)"
  end
  return ""
end
local phase = status.phase
local scheduled = spec.schedule ~= nil and spec.schedule ~= ""
local in_flight = phase == "Queued" or phase == "Running" or phase == "Pending"
if scheduled and (phase == "Scheduled" or in_flight or phase == "Succeeded") then
  local failure = last_error()
  if failure ~= nil then
    hs.status = "Degraded"
    hs.message = "Last scheduled run failed: " .. failure
  elseif in_flight then
    hs.status = "Healthy"
    hs.message = "Scheduled; a run is " .. string.lower(phase)
  else
    hs.status = "Healthy"
    hs.message = "Waiting for the next scheduled run" .. rows()
  end
elseif phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Succeeded" .. rows()
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = last_error() or "Failed"
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Suspended"
elseif phase == "Scheduled" then
  hs.status = "Healthy"
  hs.message = "Waiting for the next scheduled run" .. rows()
elseif in_flight then
  hs.message = phase
  if status.conditions ~= nil then
    for _, condition in ipairs(status.conditions) do
      if condition.type == "Ready" and condition.message ~= nil then
        hs.message = phase .. ": " .. condition.message
      end
    end
  end
end
return hs
