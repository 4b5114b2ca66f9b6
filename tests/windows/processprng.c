/*
 * TEST SCAFFOLDING ONLY - never shipped, never installed on a PC.
 *
 * Rust's standard library (1.78+) on Windows gets its random numbers from ProcessPrng in
 * bcryptprimitives.dll. Wine 8.0 (Debian 12's wine64) has no such export, so every Rust test
 * program fails to start under it. scripts/test-windows.sh builds this file into a
 * bcryptprimitives.dll that exports ProcessPrng on top of BCryptGenRandom (which Wine has)
 * and puts it in the test's own Wine prefix. Real Windows 10 and 11 have the real one.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
