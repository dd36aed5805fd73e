/* The agent's HTTP server (evhttp on agent.listen): /healthz, /metrics,
 * the JSON API under /api/v1 (docs/api.md), the dashboard for other GET
 * paths. Bearer token for /api/v1: writes always need it, reads when the
 * agent listens beyond loopback. Every request's Host must name the
 * listener (agent/hostguard.h) or carry the token, else 421; connections
 * are capped at agent.api_max_connections. Bodies are bounded (64 KiB). */
#pragma once

#include "agent/daemon.h"

#define API_MAX_BODY (64u * 1024u)
#define API_MAX_HEADERS (16u * 1024u)

struct api;

/* Binds agent.listen; fails when the address is taken or invalid. */
int api_start(struct agent *a, const char *listen, struct api **ret);
void api_free(struct api *api);

/* A new event is in the state: answers the long polls waiting for one. */
void api_events_added(struct api *api);
