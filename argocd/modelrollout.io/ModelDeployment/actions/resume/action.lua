-- Argo CD action "resume": continue the rollout after a pause command.
--
-- Writes the modelrollout.io/command annotation as compact JSON with sorted keys, which the
-- operator handles once per id: {"id":"...","verb":"resume"}.
-- The id is made of the verb, the time and the generation, so each press is a new command.
-- Runs in Argo CD's Lua sandbox (no string or math library; os.time is allowed).

local verb = "resume"
local generation = "0"
if obj.metadata.generation ~= nil then
  generation = tostring(obj.metadata.generation)
end
local id = "argocd-" .. verb .. "-" .. tostring(os.time()) .. "-" .. generation

local value = '{"id":"' .. id .. '"'
value = value .. ',"verb":"' .. verb .. '"}'

if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrollout.io/command"] = value
return obj
