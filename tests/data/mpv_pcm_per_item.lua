local n = 0
local dir = mp.get_opt("pcmdir")
mp.add_hook("on_load", 50, function()
  n = n + 1
  mp.set_property("options/ao-pcm-file", string.format("%s/%03d.wav", dir, n))
end)
mp.register_event("end-file", function(e)
  io.stdout:write(string.format("ITEM %d %s\n", n, e.reason))
  io.stdout:flush()
end)
