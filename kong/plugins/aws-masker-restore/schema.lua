-- aws-masker-restore: configuration (Kong's schema DSL). See handler.lua.
return {
  name = "aws-masker-restore",
  fields = {
    {
      config = {
        type = "record",
        fields = {
          {
            max_held_bytes = {
              description = "most response bytes held back at once while restoring (an SSE event "
                .. "still arriving, events queued behind a token cut across deltas); a response "
                .. "that needs more passes on from there with its tokens, with a warning",
              type = "integer",
              required = true,
              default = 1048576,
              between = { 4096, 104857600 },
            },
          },
        },
      },
    },
  },
}
