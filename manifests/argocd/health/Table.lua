-- ArgoCD health of a lakeop Table (lakeop.io/v1alpha1), from its Ready condition.
-- Healthy: Ready=True. Progressing: no status yet, spec not yet observed, Ready=Unknown,
-- or being deleted. Degraded: Ready=False (refused location, invalid spec, storage down).
-- ArgoCD runs this under gopher-lua (Lua 5.1): keep to 5.1.
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
if ready == nil then
  return hs
end
local message = ready.message or ready.reason or ""
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
elseif ready.status == "False" and ready.reason ~= "Deleting" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. message
else
  hs.message = message
end
return hs
