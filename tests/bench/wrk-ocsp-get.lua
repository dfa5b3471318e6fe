-- SPDX-License-Identifier: Apache-2.0
-- wrk script: GET /<url-encoded base64 of the DER request in $OCSP_REQ> (RFC 6960 A.1), encoded
-- the way nginx's stapling code encodes it ('+', '/', '=' as %2B, %2F, %3D).
local f = assert(io.open(os.getenv("OCSP_REQ"), "rb"))
local der = f:read("*a")
f:close()

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
	local out = {}
	for i = 1, #s, 3 do
		local a, b, c = s:byte(i, i + 2)
		local n = a * 65536 + (b or 0) * 256 + (c or 0)
		local chars = 4 - (b and 0 or 1) - (c and 0 or 1)
		for j = 1, 4 do
			if j <= chars then
				local k = math.floor(n / 2 ^ (6 * (4 - j))) % 64
				out[#out + 1] = alphabet:sub(k + 1, k + 1)
			else
				out[#out + 1] = "="
			end
		end
	end
	return table.concat(out)
end

local function urlencode(s)
	return (s:gsub("[+/=]", function(ch)
		return string.format("%%%02X", ch:byte())
	end))
end

wrk.method = "GET"
wrk.path = (os.getenv("OCSP_PREFIX") or "/") .. urlencode(base64(der))
