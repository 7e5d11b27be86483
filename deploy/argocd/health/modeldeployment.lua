-- Argo CD health of a gptoss.dev ModelDeployment (docs/gitops.md). Reads only the status the
-- operator writes: observedGeneration, phase and the conditions Planned, WeightsReady,
-- Progressing, Ready and Degraded (docs/api.md).
-- The shared part comes first: common.lua (hs, status, condition, describe).

local conditions = status.conditions
local planned = condition(conditions, "Planned")
local degraded = condition(conditions, "Degraded")
local progressing = condition(conditions, "Progressing")
local ready = condition(conditions, "Ready")

-- Failed: the spec cannot be planned (or is invalid) or the weight download failed; it stays
-- so until the spec changes.
if status.phase == "Failed" then
  hs.status = "Degraded"
  if planned ~= nil and planned.status ~= "True" then
    hs.message = describe(planned)
  else
    hs.message = describe(degraded)
  end
  return hs
end

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end

-- spec.replicas: 0 is a deliberate "off": nothing serves and nothing is wrong, like a
-- suspended CronJob or a paused Deployment, which Argo CD also reports as Suspended.
if obj.spec ~= nil and obj.spec.replicas == 0 then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end

if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(progressing)
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

-- Downloading weights, or pods starting / waiting for GPU nodes that are not (yet) failures.
hs.status = "Progressing"
hs.message = describe(ready)
if status.phase == "Downloading" then
  hs.message = describe(condition(conditions, "WeightsReady"))
end
return hs
