/* tools/sparrow/stb_image_impl.c — the one translation unit that compiles
 * Debian's stb_image (PNG, JPEG, PNM/PGM only). Built without our warning
 * flags: it is third-party code used as installed.
 *
 * STBI_MAX_DIMENSIONS is stb's own backstop, set above SPR_VISION_MAX_SIDE so
 * that stbi_info still reports an oversized image's size and image.c refuses
 * it with its own message (before any pixel is decoded). */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNM
#define STBI_MAX_DIMENSIONS (1 << 20)
#include <stb_image.h>
