-- wrk script: the same POST with every request (introspection of one access token), used by
-- scripts/bench-oidc.
--
--   wrk ... -s post.lua URL -- BODY_FILE
--
-- BODY_FILE holds the urlencoded body.
-- Headers (Authorization, Content-Type) come from wrk's -H options.

function init(args)
   local file = assert(io.open(args[1], "rb"))
   wrk.method = "POST"
   wrk.body = file:read("*a")
   file:close()
end
