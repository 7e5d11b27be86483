-- Argo CD health of a gptoss.dev ModelDeployment (docs/gitops.md). Reads only the status the
-- operator writes: observedGeneration, phase and the conditions Planned, WeightsReady,
-- Progressing, Ready and Degraded (docs/api.md).
-- The shared part comes first: common.lua (hs, status, condition, describe, verdict).

local conditions = status.conditions
local planned = condition(conditions, "Planned")
local degraded = condition(conditions, "Degraded")
local progressing = condition(conditions, "Progressing")
local ready = condition(conditions, "Ready")

-- Failed: the spec cannot be planned (or is invalid) or the weight download failed; it stays
-- so until the spec changes.
if status.phase == "Failed" then
  if planned ~= nil and planned.status ~= "True" then
    return verdict("Degraded", planned)
  end
  return verdict("Degraded", degraded)
end

if degraded ~= nil and degraded.status == "True" then
  return verdict("Degraded", degraded)
end

-- spec.replicas: 0 is a deliberate "off": nothing serves and nothing is wrong, like a
-- suspended CronJob or a paused Deployment, which Argo CD also reports as Suspended.
if obj.spec ~= nil and obj.spec.replicas == 0 then
  return verdict("Suspended", ready)
end

if progressing ~= nil and progressing.status == "True" then
  return verdict("Progressing", progressing)
end

if ready ~= nil and ready.status == "True" then
  return verdict("Healthy", ready)
end

-- Downloading weights, or pods starting / waiting for GPU nodes that are not (yet) failures.
if status.phase == "Downloading" then
  return verdict("Progressing", condition(conditions, "WeightsReady"))
end
return verdict("Progressing", ready)
