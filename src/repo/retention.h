/* Object Lock upkeep: what the repository still holds keeps its
 * retention (kopia's extend-object-locks). */
#pragma once

#include "repo/repo.h"

/* Gives every object of the repository but locks a full retention from
 * now, on the store's connections in parallel; 0 at once on a store
 * without retention. *ret_n counts the objects. Run it after prune, when
 * what is left is what kept snapshots use. */
int repo_extend_retention(struct repo *repo, unsigned *ret_n);
