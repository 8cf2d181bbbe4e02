/* secret.c - the sealing key and AES-256-GCM sealing (secret.h). */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_LEN 12
#define TAG_LEN 16

int secret_key_load(secret_key *k, const char *dir, int create, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/secret.key", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, k->key, sizeof k->key);
        close(fd);
        if (n != (ssize_t)sizeof k->key) {
            snprintf(err, errlen, "%s: expected %d bytes", path, SECRET_KEY_LEN);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT || !create) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (RAND_bytes(k->key, sizeof k->key) != 1) {
        snprintf(err, errlen, "%s: no random bytes", path);
        return -1;
    }
    /* Written under a temporary name and renamed, so a crash never leaves a
     * short key behind. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    ssize_t n = write(fd, k->key, sizeof k->key);
    int ok = n == (ssize_t)sizeof k->key && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void secret_key_wipe(secret_key *k)
{
    OPENSSL_cleanse(k->key, sizeof k->key);
}

int secret_seal(const secret_key *k, const void *ad, size_t adlen, const void *plain, size_t len, unsigned char *out)
{
    if (len > 1 << 20 || RAND_bytes(out, NONCE_LEN) != 1)
        return -1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return -1;
    int n, ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->key, out) == 1 &&
                EVP_EncryptUpdate(c, NULL, &n, ad, (int)adlen) == 1 &&
                EVP_EncryptUpdate(c, out + NONCE_LEN, &n, plain, (int)len) == 1 &&
                EVP_EncryptFinal_ex(c, out + NONCE_LEN + n, &n) == 1 &&
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + NONCE_LEN + len) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

long secret_open(const secret_key *k, const void *ad, size_t adlen, const unsigned char *sealed, size_t len,
                 char *plain)
{
    if (len < SECRET_OVERHEAD || len > (1 << 20) + SECRET_OVERHEAD)
        return -1;
    size_t clen = len - SECRET_OVERHEAD;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return -1;
    int n, ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->key, sealed) == 1 &&
                EVP_DecryptUpdate(c, NULL, &n, ad, (int)adlen) == 1 &&
                EVP_DecryptUpdate(c, (unsigned char *)plain, &n, sealed + NONCE_LEN, (int)clen) == 1 &&
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(sealed + NONCE_LEN + clen)) == 1 &&
                EVP_DecryptFinal_ex(c, (unsigned char *)plain + n, &n) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        OPENSSL_cleanse(plain, clen);
        return -1;
    }
    plain[clen] = '\0';
    return (long)clen;
}
