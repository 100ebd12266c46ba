/* libFuzzer target: arbitrary bytes through the one JSON scanner (user/json.c) and the
 * accessors every report uses, with the tokens walked as logread and the renderers walk
 * them; then through the three report escapers and path normalisation. Built by
 * `make fuzz-json`:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iuser tests/fuzz/fuzz_json.c \
 *     user/json.c user/util.c user/report/escape.c user/report/normalize.c -o build/fuzz_json
 *
 * Checks, beyond the sanitizers: every token lies inside the input, `next` never points
 * backwards or past the end, and a decoded string re-encoded scans back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "report/escape.h"
#include "report/normalize.h"

#define TOKENS 512

static void walk(const char *s, size_t n, const struct jtok *t, int nt)
{
	for (int i = 0; i < nt; i++) {
		struct jbuf b = {0}, enc = {0}, again = {0};
		int64_t v;

		if (t[i].s < s || t[i].s + t[i].n > s + n || t[i].next <= (unsigned)i ||
		    t[i].next > (unsigned)nt)
			abort();
		json_int(&t[i], &v);
		json_get(t, i, "kind");
		json_at(t, i, t[i].count ? t[i].count - 1 : 0);
		if (t[i].type == J_STR && json_unstr(&t[i], &b) == 0) {
			struct jtok back[2];

			jb_str(&enc, b.p, b.len);
			if (json_scan(enc.p, enc.len, back, 2) != 1 ||
			    json_unstr(&back[0], &again) != 0 || again.len != b.len ||
			    (b.len && memcmp(again.p, b.p, b.len)))
				abort();
		}
		jb_free(&b);
		jb_free(&enc);
		jb_free(&again);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jtok t[TOKENS];
	const char *s = (const char *)data;
	struct jbuf b = {0};
	int nt = json_scan(s, size, t, TOKENS);

	if (nt > 0)
		walk(s, size, t, nt);
	esc_html(&b, s, size);
	esc_md(&b, s, size);
	esc_term(&b, s, size);
	norm_text(&b, s, size);
	jb_free(&b);
	return 0;
}
