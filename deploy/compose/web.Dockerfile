# SPDX-License-Identifier: Apache-2.0
#
# The web servers of the compose cluster: Apache httpd 2.4 and nginx 1.22 from Debian 12, in one
# image (each container runs one of them, its configuration bind-mounted from deploy/compose).
# deploy/compose/build.sh builds it (context: deploy/compose) on the same base as
# the stapled image.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN set -eu; \
	apt-get update; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		apache2 nginx-light openssl ca-certificates; \
	rm -rf /var/lib/apt/lists/*; \
	install -d -o www-data -g www-data /run/apache2 /var/www/html; \
	echo "hello from stapled's compose cluster" >/var/www/html/index.html
STOPSIGNAL SIGTERM
