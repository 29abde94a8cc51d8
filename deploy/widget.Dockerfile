# The chat widget and the clinic's demo page, served by nginx, which is also the reverse proxy and
# load balancer in front of the Rasa servers (deploy/nginx.conf). Build from the repository root:
#   docker build -f deploy/widget.Dockerfile -t sciatica-assistant/widget .

# The widget: socket.io-client bundled by esbuild, both pinned in package-lock.json (as `make widget`).
FROM node:22-bookworm-slim AS widget
WORKDIR /src/web/widget
COPY web/widget/package.json web/widget/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/widget/src/ src/
# Writes ../static/chat-widget.js, i.e. /src/web/static/chat-widget.js.
RUN npm run build --silent

# nginx 1.28 (stable). The image renders /etc/nginx/templates/*.template into /etc/nginx/conf.d/
# at start, replacing ${PUBLIC_URL} with the container's environment variable.
FROM nginx:1.28-alpine
COPY deploy/nginx.conf /etc/nginx/templates/default.conf.template
COPY web/index.html /usr/share/nginx/html/index.html
COPY --from=widget /src/web/static/chat-widget.js /usr/share/nginx/html/static/chat-widget.js
EXPOSE 8080
