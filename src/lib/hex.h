/* Hexadecimal digits, for the decoders of hex text (repo/crypto.c's
 * hex_decode, the %XX decoding of the agent's queries and of locations). Inline: the backup module
 * uses it too, and a one-line helper is not worth an exported symbol. */
#pragma once

/* 0..15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for anything else. */
static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
