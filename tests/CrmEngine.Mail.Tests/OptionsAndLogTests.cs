using System.ComponentModel.DataAnnotations;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Mail.Sending;
using CrmEngine.Mail.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.Mail.Tests;

public sealed class OptionsAndLogTests
{
    [Fact]
    public async Task The_smtp_password_never_reaches_the_logs_even_when_login_fails()
    {
        const string password = "S3cret-Pa55word-%&";
        using var temp = new TempFolder();
        using var smtp = new SmtpServer(Path.Combine(temp.Path, "smtp"));
        var settings = MailWorld.Settings(temp.Path, smtp, workers: 1);
        settings["Mail:SmtpUser"] = "crm-relay";
        settings["Mail:SmtpPassword"] = password;
        await using (var world = await MailWorld.StartAsync(temp.Path, settings))
        {
            var customer = await world.CustomerAsync("Log Check", "log@example.com");
            var id = (await world.Outbox.EnqueueAsync(new MailRequest { Template = "welcome", CustomerId = customer.Id, IdempotencyKey = "l1" })).MessageId;

            // aiosmtpd offers no AUTH on a plain connection: the login cannot happen; the message waits and says why.
            var retrying = await world.WaitForStateAsync(id, MailState.Retrying);
            Assert.Contains("offers no AUTH", retrying.LastError, StringComparison.Ordinal);
            Assert.DoesNotContain(password, retrying.LastError, StringComparison.Ordinal);
            Assert.Contains(world.Logs.Lines, l => l.Contains("user crm-relay, password set", StringComparison.Ordinal));
            Assert.Contains(world.Logs.Lines, l => l.Contains(id, StringComparison.Ordinal) && l.Contains("offers no AUTH", StringComparison.Ordinal));
            Assert.DoesNotContain(password, world.Logs.All, StringComparison.Ordinal);
            Assert.DoesNotContain(password, world.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MailOptions>>().Value.ToString(), StringComparison.Ordinal);
        }

        Assert.Empty(smtp.Received());
    }

    [Theory]
    [InlineData("Workers", "0", "Workers")]
    [InlineData("FromAddress", "not-an-address", "FromAddress")]
    [InlineData("UnsubscribeBaseUrl", "ftp://example.com", "UnsubscribeBaseUrl")]
    [InlineData("RetryMaxDelay", "00:00:00.100", "RetryMaxDelay")]
    [InlineData("SmtpCertificateThumbprint", "abc", "SmtpCertificateThumbprint")]
    [InlineData("SmtpPassword", "x", "SmtpUser")]
    public async Task A_bad_setting_stops_start_up_naming_the_key(string key, string value, string named)
    {
        using var temp = new TempFolder();
        var settings = MailWorld.Settings(temp.Path, smtp: null);
        settings["Mail:" + key] = value;
        var ex = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () =>
        {
            await using var world = await MailWorld.StartAsync(temp.Path, settings, s => s.AddSingleton<IHostedService, ValidateOnStart>());
        });
        Assert.Contains(named, ex.Message, StringComparison.Ordinal);
    }

    /// <summary>What the generic host does at start: validate every options instance registered with ValidateOnStart.</summary>
    private sealed class ValidateOnStart(IServiceProvider services) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            _ = services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MailOptions>>().Value;
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public void Backoff_doubles_from_the_base_delay_up_to_the_maximum()
    {
        var options = new MailOptions { RetryBaseDelay = TimeSpan.FromSeconds(30), RetryMaxDelay = TimeSpan.FromMinutes(5) };
        var backoff = new Func<int, TimeSpan>(attempt => OutboxSender.Backoff(options, attempt));
        Assert.Equal(TimeSpan.FromSeconds(30), backoff(1));
        Assert.Equal(TimeSpan.FromSeconds(60), backoff(2));
        Assert.Equal(TimeSpan.FromSeconds(240), backoff(4));
        Assert.Equal(TimeSpan.FromMinutes(5), backoff(5));
        Assert.Equal(TimeSpan.FromMinutes(5), backoff(60));
    }

    [Fact]
    public async Task The_rate_limit_spaces_sends_evenly_over_all_workers()
    {
        // 60 a minute: one send a second, whichever worker asks; the clock is a fake one moved by hand.
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var pacer = new Pacer(60, time);
        var waits = Enumerable.Range(0, 4).Select(_ => pacer.WaitAsync(CancellationToken.None)).ToList();
        Assert.True(waits[0].IsCompleted, "the first send goes at once");
        Assert.All(waits.Skip(1), w => Assert.False(w.IsCompleted));

        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(waits[1].IsCompleted, "not before one second");
        time.Advance(TimeSpan.FromMilliseconds(1));
        await waits[1];
        Assert.False(waits[2].IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        await waits[2];
        Assert.False(waits[3].IsCompleted);

        // After a quiet spell the next send goes at once (no burst is saved up) and the spacing starts again from it.
        time.Advance(TimeSpan.FromMinutes(5));
        await waits[3];
        Assert.True(pacer.WaitAsync(CancellationToken.None).IsCompleted);
        Assert.False(pacer.WaitAsync(CancellationToken.None).IsCompleted);

        // 0: no limit.
        var unlimited = new Pacer(0, time);
        Assert.All(Enumerable.Range(0, 100).Select(_ => unlimited.WaitAsync(CancellationToken.None)), w => Assert.True(w.IsCompleted));
    }

    [Fact]
    public void Claim_batches_stay_within_about_ten_seconds_of_sending_under_a_rate_limit()
    {
        Assert.Equal(128, OutboxSender.CapacityFor(new MailOptions { Workers = 2, MessagesPerMinute = 0 }));
        Assert.Equal(100, OutboxSender.CapacityFor(new MailOptions { Workers = 2, MessagesPerMinute = 600 }));
        Assert.Equal(4, OutboxSender.CapacityFor(new MailOptions { Workers = 2, MessagesPerMinute = 6 }));
        Assert.Equal(512, OutboxSender.CapacityFor(new MailOptions { Workers = 32, MessagesPerMinute = 0 }));
    }

    [Theory]
    [InlineData(null, null, "http://127.0.0.1:5080")]
    [InlineData("https://crm.example.com/", null, "https://crm.example.com")]
    [InlineData(null, "http://0.0.0.0:8080;https://localhost:8443", "http://localhost:8080")]
    [InlineData(null, "http://127.0.0.1:5099", "http://127.0.0.1:5099")]
    public void The_unsubscribe_link_base_comes_from_the_option_else_the_api_address(string? option, string? apiUrls, string expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Api:Urls"] = apiUrls }).Build();
        Assert.Equal(expected, MailServiceCollectionExtensions.UnsubscribeBase(new MailOptions { UnsubscribeBaseUrl = option }, configuration));
    }

    [Fact]
    public void Default_options_are_valid_and_use_the_pickup_folder()
    {
        var options = new MailOptions();
        var results = new List<ValidationResult>();
        Assert.True(Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true), string.Join("; ", results));
        Assert.Empty(options.Validate(new ValidationContext(options)));
        Assert.True(options.UsesPickup);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Store:DataDirectory"] = "data" }).Build();
        Assert.Equal(Path.Combine("/srv/crm", "data", "pickup"), MailServiceCollectionExtensions.PickupFolder(options, configuration, "/srv/crm"));
    }
}
