// Package gitlab holds GitLab's webhook wire contract: the triggers a hook can
// enable, the X-Gitlab-Event name of each, the delivery headers, the branch
// filter and URL variables. It has no Caddy and no Redis in it, so receivers'
// expectations can be tested on their own.
package gitlab
