/* The backup engine's commands, in the order `bcdr help` lists them: the
 * one list that the binary's table (cli/commands.c), the binary's stand-ins
 * (cli/module-commands.c) and the module's table (backup/module.c) are made
 * from. X(name, summary): each command's `const struct command cmd_<name>`
 * is defined in src/cli/cmd-*.c, inside bcdr-backup.so, with the same
 * summary (the binary checks that the module it loads agrees). */
#pragma once

#define BACKUP_COMMANDS(X)                                                                      \
	X(init, "create a repository")                                                          \
	X(backup, "back up files and directories as a new snapshot")                            \
	X(snapshots, "list the snapshots of a repository")                                      \
	X(ls, "list the files of a snapshot")                                                   \
	X(diff, "show what changed between two snapshots")                                      \
	X(restore, "restore a snapshot into a directory")                                       \
	X(dump, "write a file of a snapshot to standard output")                                \
	X(check, "verify the repository's structure, and with --read-data every byte")          \
	X(forget, "remove snapshots by a keep policy (or by ID)")                               \
	X(prune, "free the data no snapshot uses")                                              \
	X(stats, "sizes, deduplication and compression of the repository")                      \
	X(copy, "copy snapshots to a second repository")                                        \
	X(key, "change or add repository passwords")

/* Helpers for the lists made from it. */
#define BACKUP_COMMAND_DECLARE(id, summary) extern const struct command cmd_##id;
#define BACKUP_COMMAND_ADDRESS(id, summary) &cmd_##id,
