/* A test shared object without the onair_plugin_entry symbol. */
int onair_not_the_entry(void);

int onair_not_the_entry(void)
{
    return 0;
}
