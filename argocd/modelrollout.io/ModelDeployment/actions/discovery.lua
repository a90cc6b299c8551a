-- Which modelrollout commands make sense for a ModelDeployment in its current phase.
-- Every action is listed; the ones that would be refused are disabled.
--
--   promote, promote-full  a rollout in progress or paused (finish the step / skip all steps)
--   abort                  a rollout in progress, paused or promoting, or a blue-green
--                          switch still within its scale-down delay
--   retry                  a rolled back revision
--   pause                  a rollout in progress or promoting
--   resume                 a rollout paused by the pause command
--
-- Runs in Argo CD's Lua sandbox (no string or math library).

local actions = {}
local phase = nil
local reason = nil
local scaling_down = false
if obj.status ~= nil then
  phase = obj.status.phase
  reason = obj.status.pauseReason
  scaling_down = obj.status.scaleDowns ~= nil and #obj.status.scaleDowns > 0
end

local function offer(name, enabled, icon, display)
  actions[name] = {["disabled"] = not enabled, ["iconClass"] = icon, ["displayName"] = display}
end

local rolling = phase == "Progressing" or phase == "Paused"
offer("promote", rolling, "fa fa-fw fa-forward", "Promote: finish the current step")
offer("promote-full", rolling, "fa fa-fw fa-fast-forward", "Promote fully: skip the remaining steps")
offer("abort", rolling or phase == "Promoting" or (phase == "Succeeded" and scaling_down),
      "fa fa-fw fa-times-circle", "Abort: roll back to the stable revision")
offer("retry", phase == "RolledBack", "fa fa-fw fa-redo-alt", "Retry the rolled back revision")
offer("pause", phase == "Progressing" or phase == "Promoting", "fa fa-fw fa-pause-circle", "Pause")
offer("resume", phase == "Paused" and reason == "Command", "fa fa-fw fa-play-circle", "Resume")
return actions
