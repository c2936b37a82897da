-- ArgoCD health of a lakeop SchemaVersion (lakeop.io/v1alpha1), from status.phase.
-- Healthy: Accepted. Degraded: Rejected (incompatible, invalid, duplicate version; never
-- used for writing). Progressing: no status yet, Pending (e.g. its Table does not exist
-- yet), or spec not yet observed. ArgoCD runs this under gopher-lua (Lua 5.1).
local hs = {status = "Progressing", message = "Waiting for the lakeop operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
local reason = ""
local message = ""
if ready ~= nil then
  reason = ready.reason or ""
  message = ready.message or ""
end
local phase = obj.status.phase
if phase == "Accepted" then
  hs.status = "Healthy"
  hs.message = "Accepted"
  if message ~= "" then
    hs.message = message
  end
elseif phase == "Rejected" then
  hs.status = "Degraded"
  hs.message = "Rejected"
  if reason ~= "" then
    hs.message = hs.message .. " (" .. reason .. ")"
  end
  local violations = obj.status.compatibility and obj.status.compatibility.violations
  if violations ~= nil and #violations > 0 then
    hs.message = hs.message .. ": " .. #violations .. " compatibility violation(s), first: "
      .. (violations[1].field or "?") .. " " .. (violations[1].rule or "")
  elseif message ~= "" then
    hs.message = hs.message .. ": " .. message
  end
elseif phase == "Pending" then
  hs.message = "Pending"
  if reason ~= "" then
    hs.message = hs.message .. " (" .. reason .. "): " .. message
  end
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
elseif ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = reason .. ": " .. message
end
return hs
