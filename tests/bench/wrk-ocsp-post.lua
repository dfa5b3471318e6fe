-- SPDX-License-Identifier: Apache-2.0
-- wrk script: POST the DER OCSP request in $OCSP_REQ (application/ocsp-request).
local f = assert(io.open(os.getenv("OCSP_REQ"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/ocsp-request"
