# Herald runs TypeScript directly on Node 24 (type stripping): only the console is built.
FROM node:24-bookworm-slim AS console
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Codegen types the tests' operations too (its one config): they come along, to this stage only.
COPY codegen.ts ./
COPY schema ./schema
COPY test ./test
COPY scripts/console-build.ts ./scripts/
COPY console ./console
RUN node scripts/console-build.ts

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY migrations ./migrations
COPY --from=console /app/console/dist ./console/dist
# Embedded mode (no DATABASE_URL) keeps its data here; mount a volume to keep it.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 4000
CMD ["node", "src/main/all.ts"]
