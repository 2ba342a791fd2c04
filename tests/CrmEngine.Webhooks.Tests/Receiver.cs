using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Webhooks.Tests;

/// <summary>One POST as the receiver saw it, raw body included, and what it answered.</summary>
internal sealed record Received(string Path, string? Event, string? DeliveryId, string? Timestamp, string? Signature, byte[] Body, int AnsweredStatus)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;

    public long Sequence => Json.GetProperty("sequence").GetInt64();
}

/// <summary>
/// A real HTTP receiver on a free loopback port (minimal Kestrel app). <see cref="Respond"/> decides the answer for each
/// request; every request is recorded in arrival order.
/// </summary>
internal sealed class Receiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private Receiver(WebApplication app)
    {
        _app = app;
        BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    public string BaseUrl { get; }

    public string Url(string path = "/hook") => BaseUrl + path;

    public ConcurrentQueue<Received> Requests { get; } = new();

    /// <summary>Answer for a request: (status, body). Default 200.</summary>
    public Func<HttpRequest, byte[], Task<(int Status, string Body)>> Respond { get; set; } = (_, _) => Task.FromResult((200, "ok"));

    public List<Received> Delivered => Requests.Where(r => r.AnsweredStatus is >= 200 and < 300).ToList();

    public static async Task<Receiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrelCore().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        Receiver? self = null;
        app.Map("/{**path}", async (HttpContext context) =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            var body = buffer.ToArray();
            var (status, answer) = await self!.Respond(context.Request, body);
            var h = context.Request.Headers;
            self.Requests.Enqueue(new Received(context.Request.Path, h["X-Crm-Event"].FirstOrDefault(), h["X-Crm-Delivery"].FirstOrDefault(),
                h["X-Crm-Timestamp"].FirstOrDefault(), h["X-Crm-Signature"].FirstOrDefault(), body, status));
            context.Response.StatusCode = status;
            if (status is >= 300 and < 400)
            {
                context.Response.Headers.Location = answer;
                return;
            }

            await context.Response.WriteAsync(answer, context.RequestAborted);
        });
        await app.StartAsync();
        self = new Receiver(app);
        return self;
    }

    /// <summary>
    /// What an integrator writes: recompute HMAC-SHA256 over "timestamp.body" (the raw bytes received) with the
    /// secret and compare in constant time with the hex after "sha256=".
    /// </summary>
    public static bool Verify(string secret, string? timestamp, string? signatureHeader, byte[] body)
    {
        if (timestamp is null || signatureHeader is null || !signatureHeader.StartsWith("sha256=", StringComparison.Ordinal))
        {
            return false;
        }

        var signed = Encoding.UTF8.GetBytes(timestamp + ".").Concat(body).ToArray();
        var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed);
        byte[] given;
        try
        {
            given = Convert.FromHexString(signatureHeader["sha256=".Length..]);
        }
        catch (FormatException)
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(expected, given);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
