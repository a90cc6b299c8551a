-- Argo CD action "promote-full": skip the remaining steps: all traffic to the new revision now.
--
-- Writes the modelrollout.io/command annotation as compact JSON with sorted keys, which the
-- operator handles once per id: {"id":"...","revision":"...","verb":"promote-full"}.
-- The id is made of the verb, the time and the generation, so each press is a new command.
-- The command names the canary revision it is meant for: if another rollout has started
-- since the button was pressed, the operator refuses it instead of promoting that one.
-- Runs in Argo CD's Lua sandbox (no string or math library; os.time is allowed).

local verb = "promote-full"
local generation = "0"
if obj.metadata.generation ~= nil then
  generation = tostring(obj.metadata.generation)
end
local id = "argocd-" .. verb .. "-" .. tostring(os.time()) .. "-" .. generation

local value = '{"id":"' .. id .. '"'
if obj.status ~= nil and obj.status.canaryRevision ~= nil and obj.status.canaryRevision ~= "" then
  value = value .. ',"revision":"' .. tostring(obj.status.canaryRevision) .. '"'
end
value = value .. ',"verb":"' .. verb .. '"}'

if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrollout.io/command"] = value
return obj
