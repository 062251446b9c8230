/*  pm_ray_jobs_api.c — Ray's Jobs REST API over libcurl (see the header).  */
#include "pm_ray_jobs_api.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_env.h"
#include "pm_json.h"
#include "pm_json_read.h"

/* Replies bigger than this are refused: a runaway log, not a job status. */
#define REPLY_MAX ((size_t) 256 << 20)
#define REQUEST_TIMEOUT_MS 15000L

struct pm_ray_jobs_t {
    char *url;   /* without a trailing slash */
    char *token; /* NULL: no Authorization header */
    CURL *curl;
};

typedef struct {
    char *data;
    size_t size;
    bool too_big;
} s_reply_t;

static size_t
s_collect (char *chunk, size_t one, size_t n, void *arg)
{
    s_reply_t *reply = arg;
    size_t bytes = one * n;
    if (reply->size + bytes > REPLY_MAX) {
        reply->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    char *grown = realloc (reply->data, reply->size + bytes + 1);
    if (!grown)
        return 0;
    memcpy (grown + reply->size, chunk, bytes);
    reply->data = grown;
    reply->size += bytes;
    reply->data[reply->size] = '\0';
    return bytes;
}

/* The token, trimmed of surrounding white space; NULL if none is configured,
   -1 in *failed when a configured file cannot be read.                    */
static char *
s_token (char *err, size_t err_size, bool *failed)
{
    *failed = false;
    const char *value = pm_env_str ("RAY_AUTH_TOKEN");
    char *text = NULL;
    if (value)
        text = strdup (value);
    else {
        const char *path = pm_env_str ("RAY_AUTH_TOKEN_PATH");
        char fallback[4096];
        const char *mode = pm_env_str ("RAY_AUTH_MODE");
        const char *home = pm_env_str ("HOME");
        if (!path && mode && strcmp (mode, "token") == 0 && home) {
            snprintf (fallback, sizeof fallback, "%s/.ray/auth_token", home);
            path = fallback;
        }
        if (!path)
            return NULL;
        FILE *f = fopen (path, "r");
        char line[4096] = "";
        if (!f || !fgets (line, sizeof line, f)) {
            snprintf (err, err_size, "cannot read the Ray token file %s", path);
            if (f)
                fclose (f);
            *failed = true;
            return NULL;
        }
        fclose (f);
        text = strdup (line);
    }
    if (!text) {
        *failed = true;
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    char *start = text;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    size_t len = strlen (start);
    while (len && strchr (" \t\r\n", start[len - 1]))
        len--;
    memmove (text, start, len);
    text[len] = '\0';
    if (!*text || strpbrk (text, "\r\n")) {
        free (text);
        *failed = true;
        snprintf (err, err_size, "the Ray token is empty or spans lines");
        return NULL;
    }
    return text;
}

pm_ray_jobs_t *
pm_ray_jobs_new (const char *url, char *err, size_t err_size)
{
    if (!url || (strncmp (url, "http://", 7) != 0 && strncmp (url, "https://", 8) != 0)) {
        snprintf (err, err_size, "the Ray Jobs API address '%s' is not an http:// or https:// URL",
                  url ? url : "");
        return NULL;
    }
    static bool curl_ready = false;
    if (!curl_ready) {
        if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf (err, err_size, "libcurl failed to initialise");
            return NULL;
        }
        curl_ready = true;
    }
    pm_ray_jobs_t *self = calloc (1, sizeof *self);
    bool failed = false;
    if (!self || !(self->url = strdup (url)) || !(self->curl = curl_easy_init ())) {
        snprintf (err, err_size, "out of memory");
        pm_ray_jobs_destroy (&self);
        return NULL;
    }
    size_t len = strlen (self->url);
    while (len && self->url[len - 1] == '/')
        self->url[--len] = '\0';
    self->token = s_token (err, err_size, &failed);
    if (failed) {
        pm_ray_jobs_destroy (&self);
        return NULL;
    }
    return self;
}

void
pm_ray_jobs_destroy (pm_ray_jobs_t **self_p)
{
    pm_ray_jobs_t *self = *self_p;
    if (!self)
        return;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    if (self->token) {
        memset (self->token, 0, strlen (self->token));
        free (self->token);
    }
    free (self->url);
    free (self);
    *self_p = NULL;
}

/* Ray's reply on one line (its first), for error messages. */
static void
s_first_line (const s_reply_t *reply, char *out, size_t size)
{
    const char *text = reply->data ? reply->data : "";
    char *message = pm_json_get_string (text, reply->size, "message");
    if (!message)
        message = pm_json_get_string (text, reply->size, "error");
    const char *source = message ? message : text;
    size_t n = strcspn (source, "\r\n");
    snprintf (out, size, "%.*s", (int) (n < 300 ? n : 300), source);
    free (message);
}

/* One request: method on path (appended to the URL) with an optional JSON
   body.  The reply (NUL-terminated) into *reply; HTTP 2xx or -1.        */
static int
s_request (pm_ray_jobs_t *self, const char *method, const char *path, const char *body,
           s_reply_t *reply, char *err, size_t err_size)
{
    memset (reply, 0, sizeof *reply);
    char url[4600];
    snprintf (url, sizeof url, "%s%s", self->url, path);
    char auth[4200];
    struct curl_slist *headers = NULL;
    headers = curl_slist_append (headers, "Accept: application/json");
    if (body)
        headers = curl_slist_append (headers, "Content-Type: application/json");
    if (self->token) {
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", self->token);
        headers = curl_slist_append (headers, auth);
        memset (auth, 0, sizeof auth);
    }
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM games in our process */
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform (curl);
    curl_slist_free_all (headers);
    long http = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &http);
    if (rc != CURLE_OK) {
        snprintf (err, err_size, "%s %s: %s", method, url,
                  reply->too_big ? "the reply is too big" : curl_easy_strerror (rc));
        if (rc == CURLE_COULDNT_CONNECT)
            snprintf (err, err_size,
                      "no Ray Jobs API answers at %s (is the cluster up with its dashboard? "
                      "ray start --head --include-dashboard true)",
                      self->url);
        free (reply->data);
        memset (reply, 0, sizeof *reply);
        return -1;
    }
    if (http < 200 || http > 299) {
        char said[320];
        s_first_line (reply, said, sizeof said);
        if (http == 401 || http == 403)
            snprintf (err, err_size,
                      "the Ray Jobs API at %s refused the request (HTTP %ld: %s): %s", self->url,
                      http, said,
                      self->token ? "the token in RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH is not "
                                    "the cluster's"
                                  : "the cluster uses token authentication: set RAY_AUTH_TOKEN "
                                    "or RAY_AUTH_TOKEN_PATH");
        else
            snprintf (err, err_size, "%s %s: HTTP %ld: %s", method, url, http, said);
        free (reply->data);
        memset (reply, 0, sizeof *reply);
        return -1;
    }
    if (!reply->data) { /* an empty body: make it a valid empty string */
        reply->data = calloc (1, 1);
        if (!reply->data) {
            snprintf (err, err_size, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* Submission ids go into URL paths unescaped: keep them to a safe alphabet. */
static int
s_check_id (const char *id, char *err, size_t err_size)
{
    size_t len = id ? strlen (id) : 0;
    bool ok = len > 0 && len <= 200;
    for (size_t i = 0; ok && i < len; i++)
        ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z')
             || (id[i] >= '0' && id[i] <= '9') || strchr ("._-", id[i]);
    if (!ok)
        snprintf (err, err_size,
                  "job id '%s': 1-200 characters of letters, digits, '.', '_' and '-'",
                  id ? id : "");
    return ok ? 0 : -1;
}

int
pm_ray_jobs_submit (pm_ray_jobs_t *self, const char *submission_id, const char *entrypoint,
                    const char *env_vars_json, char *err, size_t err_size)
{
    if (s_check_id (submission_id, err, err_size) != 0)
        return -1;
    pm_json_t body = {0};
    pm_json_raw (&body, "{\"entrypoint\": ");
    pm_json_string (&body, entrypoint);
    pm_json_raw (&body, ", \"submission_id\": ");
    pm_json_string (&body, submission_id);
    /* The entrypoint only starts the launcher: no CPU of the cluster's. */
    pm_json_raw (&body, ", \"entrypoint_num_cpus\": 0");
    if (env_vars_json)
        pm_json_raw (&body, ", \"runtime_env\": {\"env_vars\": %s}", env_vars_json);
    pm_json_raw (&body, "}");
    if (body.failed) {
        pm_json_free (&body);
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    s_reply_t reply;
    int rc = s_request (self, "POST", "/api/jobs/", body.data, &reply, err, err_size);
    pm_json_free (&body);
    if (rc != 0)
        return -1;
    char *id = pm_json_get_string (reply.data, reply.size, "submission_id");
    if (!id || strcmp (id, submission_id) != 0) {
        snprintf (err, err_size, "POST %s/api/jobs/: unexpected reply '%.200s'", self->url,
                  reply.data);
        rc = -1;
    }
    free (id);
    free (reply.data);
    return rc;
}

int
pm_ray_jobs_info (pm_ray_jobs_t *self, const char *submission_id, pm_ray_job_info_t *info,
                  char *err, size_t err_size)
{
    memset (info, 0, sizeof *info);
    if (s_check_id (submission_id, err, err_size) != 0)
        return -1;
    char path[300];
    snprintf (path, sizeof path, "/api/jobs/%s", submission_id);
    s_reply_t reply;
    if (s_request (self, "GET", path, NULL, &reply, err, err_size) != 0)
        return -1;
    char *status = pm_json_get_string (reply.data, reply.size, "status");
    long long code = 0;
    int rc = 0;
    if (!status || strlen (status) >= sizeof info->status) {
        snprintf (err, err_size, "GET %s%s: no job status in '%.200s'", self->url, path,
                  reply.data);
        rc = -1;
    } else {
        snprintf (info->status, sizeof info->status, "%s", status);
        if (pm_json_get_int (reply.data, reply.size, "driver_exit_code", &code) && code >= -255
            && code <= 255) {
            info->has_exit_code = true;
            info->exit_code = (int) code;
        }
        char *message = pm_json_get_string (reply.data, reply.size, "message");
        if (message) {
            size_t n = strcspn (message, "\r\n");
            snprintf (info->message, sizeof info->message, "%.*s",
                      (int) (n < sizeof info->message ? n : sizeof info->message - 1), message);
        }
        free (message);
    }
    free (status);
    free (reply.data);
    return rc;
}

int
pm_ray_jobs_stop (pm_ray_jobs_t *self, const char *submission_id, bool *stopped, char *err,
                  size_t err_size)
{
    *stopped = false;
    if (s_check_id (submission_id, err, err_size) != 0)
        return -1;
    char path[300];
    snprintf (path, sizeof path, "/api/jobs/%s/stop", submission_id);
    s_reply_t reply;
    if (s_request (self, "POST", path, "{}", &reply, err, err_size) != 0)
        return -1;
    int rc = 0;
    if (!pm_json_get_bool (reply.data, reply.size, "stopped", stopped)) {
        snprintf (err, err_size, "POST %s%s: unexpected reply '%.200s'", self->url, path,
                  reply.data);
        rc = -1;
    }
    free (reply.data);
    return rc;
}

int
pm_ray_jobs_logs (pm_ray_jobs_t *self, const char *submission_id, char **logs, char *err,
                  size_t err_size)
{
    *logs = NULL;
    if (s_check_id (submission_id, err, err_size) != 0)
        return -1;
    char path[300];
    snprintf (path, sizeof path, "/api/jobs/%s/logs", submission_id);
    s_reply_t reply;
    if (s_request (self, "GET", path, NULL, &reply, err, err_size) != 0)
        return -1;
    *logs = pm_json_get_string (reply.data, reply.size, "logs");
    int rc = 0;
    if (!*logs) {
        snprintf (err, err_size, "GET %s%s: no logs in the reply", self->url, path);
        rc = -1;
    }
    free (reply.data);
    return rc;
}

bool
pm_ray_job_finished (const char *status)
{
    return strcmp (status, "SUCCEEDED") == 0 || strcmp (status, "FAILED") == 0
           || strcmp (status, "STOPPED") == 0;
}
