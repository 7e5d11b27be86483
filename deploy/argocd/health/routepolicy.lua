-- Argo CD health of a gptoss.dev RoutePolicy (docs/gitops.md). Reads only the status the
-- operator writes: observedGeneration and the conditions Ready and Degraded (docs/api.md).
-- The shared part comes first: common.lua (hs, status, condition, describe).

local ready = condition(status.conditions, "Ready")
local degraded = condition(status.conditions, "Degraded")

if degraded ~= nil and degraded.status == "True" then
  -- A backend ModelDeployment that is still coming up: its own health says whether it is
  -- progressing or failed, so the policy waits with it instead of raising an alarm.
  if degraded.reason == "ModelDeploymentNotReady" then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = describe(degraded)
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

if ready ~= nil and ready.reason == "ScaledToZero" then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end

if ready == nil or ready.reason == "RouterStarting" then
  hs.status = "Progressing"
  hs.message = describe(ready)
  return hs
end

-- InvalidSpec, ApplyFailed, NoReadyBackend: nothing will change until someone acts.
hs.status = "Degraded"
hs.message = describe(ready)
return hs
