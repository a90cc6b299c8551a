-- Argo CD health of a ModelDeployment, from the phase the operator writes into status.
--
--   Pending, Progressing, Promoting -> Progressing
--   Paused                          -> Suspended (waits for a person or a timer)
--   Succeeded                       -> Healthy
--   RolledBack                      -> Degraded  (the new revision failed, or was aborted)
--   Degraded                        -> Degraded
--   no status yet, or a status older than metadata.generation -> Progressing
--
-- Runs in Argo CD's Lua sandbox, which has no string or math library: only concatenation,
-- tostring and tonumber are used.

local hs = {}

local function with_detail(summary, detail)
  if detail == nil or detail == "" then
    return summary
  end
  return summary .. ": " .. tostring(detail)
end

local status = obj.status
local generation = nil
if obj.metadata ~= nil then
  generation = tonumber(obj.metadata.generation)
end

local waiting = "waiting for the operator"
if generation ~= nil then
  waiting = "waiting for the operator to observe generation " .. tostring(generation)
end

if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end

local observed = tonumber(status.observedGeneration)
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end

local phase = status.phase

if phase == "Pending" or phase == "Progressing" or phase == "Promoting" then
  hs.status = "Progressing"
  hs.message = with_detail(phase, status.message)
  return hs
end

-- The operator's message already says why it waits ("...; paused (AwaitingPromotion)"), and
-- which revisions were rolled back and which serves: repeat the phase, then its words.
local has_message = status.message ~= nil and status.message ~= ""

if phase == "Paused" then
  hs.status = "Suspended"
  if has_message then
    hs.message = "Paused: " .. tostring(status.message)
  elseif status.pauseReason ~= nil and status.pauseReason ~= "" then
    hs.message = "Paused (" .. tostring(status.pauseReason) .. ")"
  else
    hs.message = "Paused"
  end
  return hs
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = with_detail("Succeeded", status.message)
  return hs
end

if phase == "RolledBack" and has_message then
  hs.status = "Degraded"
  hs.message = "RolledBack: " .. tostring(status.message)
  return hs
end

if phase == "RolledBack" then
  -- Without the operator's words: the last history entry is the rollout that ended; its outcome says failed or aborted.
  local revision = nil
  local outcome = nil
  if status.history ~= nil and #status.history > 0 then
    local last = status.history[#status.history]
    revision = last.revision
    outcome = last.outcome
  end
  if revision == nil and status.rejectedRevisions ~= nil and #status.rejectedRevisions > 0 then
    revision = status.rejectedRevisions[#status.rejectedRevisions]
  end
  local subject = "the new revision"
  if revision ~= nil then
    subject = "the new revision " .. tostring(revision)
  end
  local what = " failed"
  if outcome == "Aborted" then
    what = " was aborted"
  end
  local summary = "RolledBack: " .. subject .. what .. " and was rolled back"
  if status.stableRevision ~= nil then
    summary = summary .. "; " .. tostring(status.stableRevision) .. " serves"
  end
  hs.status = "Degraded"
  hs.message = summary
  return hs
end

if phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = with_detail("Degraded", status.message)
  return hs
end

hs.status = "Unknown"
hs.message = with_detail("unknown phase " .. tostring(phase), status.message)
return hs
