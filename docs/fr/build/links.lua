-- make docs: links between the French deliverables point to their HTML; any other relative link
-- (docs/runbooks/*.md, deploy/drills/*.py, ...) is made relative to docs/fr/_build/, where the HTML lives.
local DELIVERABLES = {
  cadrage = true, architecture = true, pilotage = true, ["guide-ci-cd"] = true,
  ["procedures-incidents"] = true, ["documentation-technique"] = true, presentation = true,
}

function Link(el)
  local target = el.target
  if target:match("^%a[%w+.-]*:") or target:match("^#") then return el end
  local path, anchor = target:match("^([^#]*)(#?.*)$")
  local stem = path:match("^([%w-]+)%.md$")
  if stem and DELIVERABLES[stem] then
    el.target = stem .. ".html" .. anchor
  else
    el.target = "../" .. target
  end
  return el
end
