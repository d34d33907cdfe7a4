-- aws-masker-collect: configuration (Kong's schema DSL). See handler.lua.
return {
  name = "aws-masker-collect",
  fields = {
    {
      config = {
        type = "record",
        fields = {
          {
            max_inline_body_bytes = {
              description = "largest request body handed to aws-masker in kong.ctx.shared (read "
                .. "back from nginx's temp file when it spilled there); a larger one aws-masker "
                .. "reads with its own call (one round trip more, and no second copy of a large "
                .. "body in kong.ctx.shared); 0 hands no body over",
              type = "integer",
              required = true,
              default = 1048576,
              between = { 0, 104857600 },
            },
          },
        },
      },
    },
  },
}
