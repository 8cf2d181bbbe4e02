/* log.h - levelled logging to stderr.
 *
 * A logger is a small value owned by whoever creates it (the server context
 * owns the one onaird uses); there is no process-wide logger.  Never pass a
 * password, key or full stanza body at INFO or above.
 */
#ifndef ONAIR_LOG_H
#define ONAIR_LOG_H

#include <stdarg.h>

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
    LOG_NONE = 4
} log_level;

typedef struct logger {
    log_level level;
} logger;

/* Parses "debug", "info", "warn", "error", "none"; returns -1 if unknown. */
int log_level_parse(const char *name, log_level *out);
const char *log_level_name(log_level level);

/* Writes one line "<ISO time> <level> <module>: <message>" to stderr when
 * level >= lg->level.  lg may be NULL (logs at INFO and above). */
void log_write(const logger *lg, log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void log_vwrite(const logger *lg, log_level level, const char *module, const char *fmt, va_list ap);

static inline int log_enabled(const logger *lg, log_level level)
{
    return level >= (lg ? lg->level : LOG_INFO);
}

#endif
