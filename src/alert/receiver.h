/* Delivering one notification to one receiver, synchronously (the engine
 * calls this on the receiver's worker thread). A notification is the JSON
 * message Alertmanager sends to webhook receivers:
 *
 *   {"version":"4","groupKey","truncatedAlerts","status":"firing|resolved",
 *    "receiver","groupLabels","commonLabels","commonAnnotations",
 *    "externalURL","alerts":[{"status","labels","annotations","startsAt",
 *    "endsAt","generatorURL","fingerprint"}]}
 *
 * and every receiver kind renders it: webhook posts it as is (or, for an
 * Alertmanager, posts its alerts to /api/v2/alerts), email writes it as a
 * plain text mail over SMTP, exec hands it on stdin with the main fields in
 * the environment, log appends it as one JSON line. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "alert/route.h"

/* Sends message through receiver, within receiver->timeout. Returns 0, or
 * a negative error with *ret_error (free() it) saying what failed
 * ("HTTP 500 from http://...", "smtp: Login denied", "exit status 2"). */
int alert_receiver_deliver(const struct alert_receiver *receiver, const json_t *message,
			   char **ret_error);
/* The same, given up early (-ECANCELED) once *cancel becomes true: a
 * stopping agent does not wait out a hanging receiver's timeout. */
int alert_receiver_deliver_cancellable(const struct alert_receiver *receiver,
				       const json_t *message, const bool *cancel, char **ret_error);

/* Subject and body of the email for message (free() both). */
int alert_message_email(const json_t *message, char **ret_subject, char **ret_body);
