/* Linked into the bcdr executable itself (not libbcdr.a, whose unused
 * members the linker drops): process-wide choices that keep the resident
 * footprint small (docs/internals.md, "What the binary links"). */

/* GnuTLS is in the process only because libcurl's LDAP and RTMP support
 * link it; bcdr speaks TLS through OpenSSL and limits curl to http, https
 * and smtp(s), so GnuTLS's implicit initialisation at load time (its
 * algorithms: about 0.75 MiB resident) is never needed. GnuTLS
 * exports this weak hook for exactly that; a library that does use GnuTLS
 * calls gnutls_global_init() itself, which still works. The executable
 * exports it (meson.build) so the hook is seen before main(). */
int _gnutls_global_init_skip(void);

int _gnutls_global_init_skip(void)
{
	return 1;
}
