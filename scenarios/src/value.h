/* Token-level value parsers shared by parse.c (see value.c). Each returns
 * false after reporting an error at the offending token. */
#ifndef SCN_VALUE_H
#define SCN_VALUE_H

#include "scn_internal.h"

struct scn_tok *scn__cur(struct scn_cc *c);
struct scn_tok *scn__next(struct scn_cc *c);
bool scn__at_end(struct scn_cc *c);
const char *scn__desc(const struct scn_tok *t, char *buf, size_t len);
bool scn__is_word(struct scn_cc *c, const char *w);
bool scn__accept(struct scn_cc *c, const char *w);
bool scn__expect_word(struct scn_cc *c, const char *w);
bool scn__fail_expected(struct scn_cc *c, const char *what);

bool scn__p_count(struct scn_cc *c, const char *what, uint64_t min,
                  uint64_t max, uint64_t *out);
bool scn__p_duration(struct scn_cc *c, uint64_t *out);
bool scn__p_positive_duration(struct scn_cc *c, const char *what,
                              uint64_t *out);
bool scn__p_time(struct scn_cc *c, bool *relative, uint64_t *out);
bool scn__p_size(struct scn_cc *c, uint64_t *out);
bool scn__p_bandwidth(struct scn_cc *c, uint64_t *out);
bool scn__p_prob(struct scn_cc *c, uint32_t *out);
/* "99.9" -> 999000 (a percentage, 0..100, exact) */
bool scn__percent_ppm(const char *s, uint32_t *out);
bool scn__p_rate(struct scn_cc *c, uint64_t *out_mps);
bool scn__p_keyword(struct scn_cc *c, const char *what,
                    const char *const *list, int *out);
bool scn__looks_like_set(const struct scn_tok *t);
bool scn__p_set(struct scn_cc *c, struct scn_set *out);
bool scn__p_arrow(struct scn_cc *c, bool allow_both, bool *both);

#endif
