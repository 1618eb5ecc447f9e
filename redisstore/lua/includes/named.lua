-- named reads arguments given as name, value pairs from ARGV[from] on,
-- until the end or a name '|'. It returns them as a table and the index
-- after them, where any positional arguments follow.
local function named(from)
  local a, i = {}, from
  while i < #ARGV and ARGV[i] ~= '|' do
    a[ARGV[i]] = ARGV[i + 1]
    i = i + 2
  end
  if ARGV[i] == '|' then i = i + 1 end
  return a, i
end
