package alerts

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"
)

// Levels of an alert; critical ones mention people so they push as highlights.
const (
	LevelInfo     = "info"
	LevelWarning  = "warning"
	LevelCritical = "critical"
)

// Alert is one message to deliver. It is also the spool's record format.
type Alert struct {
	Message    string    `json:"message"`
	Title      string    `json:"title,omitempty"`
	Markdown   bool      `json:"markdown,omitempty"`
	Text       bool      `json:"text,omitempty"` // m.text instead of m.notice
	Level      string    `json:"level,omitempty"`
	NoHostname bool      `json:"no_hostname,omitempty"`
	Hostname   string    `json:"hostname,omitempty"`
	Room       string    `json:"room,omitempty"`
	File       string    `json:"file,omitempty"`      // path of the attachment
	FileName   string    `json:"file_name,omitempty"` // its name as shown
	Created    time.Time `json:"created"`
	TxnID      string    `json:"txn_id"` // fixed per alert: a resend is deduplicated by the server
}

// Validate checks the fields that come from the command line.
func (a *Alert) Validate() error {
	switch a.Level {
	case "", LevelInfo, LevelWarning, LevelCritical:
	default:
		return fmt.Errorf("%w: level %q: want info, warning or critical", ErrConfig, a.Level)
	}
	if strings.TrimSpace(a.Message) == "" && a.File == "" && a.Title == "" {
		return fmt.Errorf("%w: empty message", ErrConfig)
	}
	return nil
}

var levelTag = map[string]string{LevelWarning: "⚠️ ", LevelCritical: "🚨 "}

// unsafeHref matches links whose scheme clients should never follow.
var unsafeHref = regexp.MustCompile(`(?i)\s(href|src)="\s*(?:javascript|data|vbscript|file):[^"]*"`)

// Content renders the alert as an m.room.message. delayed is set when the
// alert comes out of the spool, so the text says when it really happened.
func (a *Alert) Content(mentions []id.UserID, delayed bool) *event.MessageEventContent {
	prefix := levelTag[a.Level]
	if !a.NoHostname && a.Hostname != "" {
		prefix = a.Hostname + ": " + prefix
	}
	msg := strings.TrimRight(a.Message, "\n")
	var note string
	if delayed {
		note = fmt.Sprintf("(queued at %s, delivered late)", a.Created.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	var c event.MessageEventContent
	if a.Markdown {
		src := format.EscapeMarkdown(prefix)
		if a.Title != "" {
			src += "**" + format.EscapeMarkdown(a.Title) + "**\n\n" + msg
		} else {
			src += msg
		}
		if note != "" {
			src += "\n\n*" + format.EscapeMarkdown(note) + "*"
		}
		c = format.RenderMarkdown(src, true, false)
		c.FormattedBody = unsafeHref.ReplaceAllString(c.FormattedBody, "")
	} else {
		body := prefix
		if a.Title != "" {
			body += a.Title + "\n" + msg
		} else {
			body += msg
		}
		if note != "" {
			body += "\n" + note
		}
		c = event.MessageEventContent{Body: body}
	}
	c.MsgType = event.MsgNotice
	if a.Text {
		c.MsgType = event.MsgText
	}
	c.Mentions = &event.Mentions{}
	if a.Level == LevelCritical {
		if len(mentions) == 0 {
			c.Mentions.Room = true
			c.Body = "@room " + c.Body
			if c.FormattedBody != "" {
				c.FormattedBody = "@room " + c.FormattedBody
			}
		} else {
			var plain, rich []string
			for _, u := range mentions {
				c.Mentions.Add(u)
				plain = append(plain, u.String())
				rich = append(rich, fmt.Sprintf(`<a href="%s">%s</a>`, html.EscapeString(u.URI().MatrixToURL()), html.EscapeString(u.String())))
			}
			if c.FormattedBody == "" {
				c.Format = event.FormatHTML
				c.FormattedBody = strings.ReplaceAll(html.EscapeString(c.Body), "\n", "<br>")
			}
			c.Body = strings.Join(plain, " ") + " " + c.Body
			c.FormattedBody = strings.Join(rich, " ") + " " + c.FormattedBody
		}
	}
	return &c
}
