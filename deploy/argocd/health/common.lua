-- Shared by every gptoss.dev health check: `python -m devtools.argocd` puts it in front of each
-- kind's check (Argo CD runs each check as one self-contained script, with no way to load
-- another file). It defines `hs`, `status`, `condition`, `describe` and `verdict`, and returns Progressing
-- until the operator has reported status for the object's current generation.
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

-- The health Argo CD shows: a status and the condition that explains it.
local function verdict(health, c)
  hs.status = health
  hs.message = describe(c)
  return hs
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
