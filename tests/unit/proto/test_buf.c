/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder until the module lands */
int main(void);
int main(void)
{
	return 0;
}
