/* tools/sparrow/stb_image_impl.c — the one translation unit that compiles
 * Debian's stb_image (PNG, JPEG, PNM/PGM only). Built without our warning
 * flags: it is third-party code used as installed. */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNM
#define STBI_MAX_DIMENSIONS 16384
#include <stb_image.h>
