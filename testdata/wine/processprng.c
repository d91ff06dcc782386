/*
 * bcryptprimitives.dll shim for Wine 8.0 (Debian 12), which has no such
 * DLL. Go 1.24 and later take their randomness from ProcessPrng in
 * bcryptprimitives.dll, loaded from system32 when the runtime starts, so a
 * Go Windows binary exits at once under that Wine. This DLL exports
 * ProcessPrng on top of RtlGenRandom (advapi32's SystemFunction036), which
 * Wine implements. Used only by .ci/cross-smoke.sh, built with:
 *
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll processprng.c -ladvapi32
 */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	/* RtlGenRandom takes a ULONG length: feed large requests in pieces. */
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!RtlGenRandom(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
