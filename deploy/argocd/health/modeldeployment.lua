-- Argo CD health of a gptoss.dev ModelDeployment (docs/gitops.md). Reads only the status the
-- operator writes: observedGeneration, phase and the conditions Planned, WeightsReady,
-- Progressing, Ready and Degraded (docs/api.md).
local hs = {}

local function condition(conditions, type_)
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c == nil then
    return ""
  end
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason or ""
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation or 0
if status.observedGeneration == nil or status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

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
