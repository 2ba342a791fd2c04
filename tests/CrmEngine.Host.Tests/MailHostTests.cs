using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// The real <c>crm</c> process with no SMTP server configured: an async event rule calls <c>api.sendMail</c> when a
/// customer is created, the outbox renders the shipped welcome template and the sender writes a .eml file to the
/// default pickup folder (<c>data/pickup</c>); <c>crm mail list|show</c> show it while the engine runs and after it stopped.
/// </summary>
public sealed class MailHostTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Without_smtp_a_new_customer_gets_a_welcome_eml_in_the_pickup_folder()
    {
        using var root = new TestRoot(s =>
        {
            s["Templates"] = new JsonObject { ["Directory"] = Path.Combine(CrmProcess.HostOutput, "templates") };
            s["Rules"]!["Directory"] = "mail-rules";
        });
        Directory.CreateDirectory(root.File_("mail-rules/events"));
        Directory.CreateDirectory(root.File_("mail-rules/segments"));
        await File.WriteAllTextAsync(root.File_("mail-rules/events/welcome-mail.js"),
            "// @entity customer\n// @stage async\nif (event.operation === 'create') api.sendMail({ template: 'welcome' });\n");
        var pickup = Path.Combine(root.DataDirectory, "pickup");

        using (var crm = CrmProcess.Start(root.Path, output))
        {
            await crm.WaitForReadyAsync();
            Assert.Contains(crm.Lines, l => l.Contains("Mail sender started: pickup folder", StringComparison.Ordinal));
            using (var http = root.Control())
            {
                using var response = await http.PostAsJsonAsync("customers", new { name = "Łukasz Żółć", kind = "Person", emails = new[] { "lukasz@example.com" } });
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            }

            var file = await EventuallyAsync(() => Directory.Exists(pickup) ? Directory.GetFiles(pickup, "*.eml").SingleOrDefault() : null, "a .eml file in " + pickup);
            // Raw checks (this project does not reference MimeKit; the mail tests parse messages in full).
            var raw = await File.ReadAllTextAsync(file);
            var head = raw[..raw.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
            Assert.Contains("<lukasz@example.com>", head, StringComparison.Ordinal);
            Assert.Contains("From: CrmEngine <crm@localhost>", head, StringComparison.Ordinal);
            Assert.Contains("Subject: Welcome to CrmEngine", head, StringComparison.Ordinal);
            Assert.Contains("Message-Id: <", head, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("multipart/alternative", head, StringComparison.Ordinal);
            Assert.Contains("text/plain", raw, StringComparison.Ordinal);
            Assert.Contains("text/html", raw, StringComparison.Ordinal);
            Assert.True(head.All(ch => ch < 128), "headers are 7-bit (non-ASCII names are RFC 2047 encoded)");
            var id = Path.GetFileNameWithoutExtension(file);

            // While it runs: over the control channel.
            var (code, listed) = await CrmProcess.RunAsync(root.Path, output, "mail", "list", "--state", "sent");
            Assert.Equal(0, code);
            Assert.Contains(id, listed, StringComparison.Ordinal);
            Assert.Contains("welcome", listed, StringComparison.Ordinal);

            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(Bound));
        }

        // Stopped: the database directly.
        var files = Directory.GetFiles(pickup, "*.eml");
        var only = Path.GetFileNameWithoutExtension(Assert.Single(files));
        var (showCode, shown) = await CrmProcess.RunAsync(root.Path, output, "mail", "show", only);
        Assert.Equal(0, showCode);
        Assert.Contains("state           Sent", shown, StringComparison.Ordinal);
        Assert.Contains("rules:welcome-mail", shown, StringComparison.Ordinal);
        Assert.Contains("Łukasz Żółć <lukasz@example.com>", shown, StringComparison.Ordinal);
        var (badCode, bad) = await CrmProcess.RunAsync(root.Path, output, "mail", "list", "--state", "lost");
        Assert.Equal(2, badCode);
        Assert.Contains("unknown state 'lost'", bad, StringComparison.Ordinal);
    }

    private static async Task<string> EventuallyAsync(Func<string?> read, string what)
    {
        var until = DateTime.UtcNow + Bound;
        while (true)
        {
            if (read() is { } value)
            {
                return value;
            }

            if (DateTime.UtcNow > until)
            {
                throw new Xunit.Sdk.XunitException("timed out waiting for " + what);
            }

            await Task.Delay(100);
        }
    }
}
