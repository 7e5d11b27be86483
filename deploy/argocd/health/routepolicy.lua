-- Argo CD health of a gptoss.dev RoutePolicy (docs/gitops.md). Reads only the status the
-- operator writes: observedGeneration and the conditions Ready and Degraded (docs/api.md).
-- The shared part comes first: common.lua (hs, status, condition, describe, verdict).

local ready = condition(status.conditions, "Ready")
local degraded = condition(status.conditions, "Degraded")

if degraded ~= nil and degraded.status == "True" then
  -- A backend ModelDeployment that is still coming up: its own health says whether it is
  -- progressing or failed, so the policy waits with it instead of raising an alarm.
  if degraded.reason == "ModelDeploymentNotReady" then
    return verdict("Progressing", degraded)
  end
  -- A backend ModelDeployment scaled to zero on purpose (it is Suspended itself): nothing is
  -- on its way, and waiting as Progressing would last until someone scales it up.
  if degraded.reason == "ModelDeploymentScaledToZero" then
    return verdict("Suspended", degraded)
  end
  return verdict("Degraded", degraded)
end

if ready ~= nil and ready.status == "True" then
  return verdict("Healthy", ready)
end

if ready ~= nil and ready.reason == "ScaledToZero" then
  return verdict("Suspended", ready)
end

if ready == nil or ready.reason == "RouterStarting" then
  return verdict("Progressing", ready)
end

-- InvalidSpec, ApplyFailed, NoReadyBackend: nothing will change until someone acts.
return verdict("Degraded", ready)
