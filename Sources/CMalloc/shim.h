/* glibc's malloc extensions, which Swift's Glibc module leaves out (malloc_trim: give the
 * heap's free pages back to the system). Only WeirVerifier imports this module. */
#include <malloc.h>
