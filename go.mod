module github.com/oauth2mail/oauth2mail

go 1.26

require github.com/BurntSushi/toml v1.6.0
