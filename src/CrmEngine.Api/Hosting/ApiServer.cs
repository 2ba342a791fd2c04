using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CrmEngine.Api.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Api.Hosting;

/// <summary>
/// The HTTP API as a hosted service of the engine: like the control channel, it builds its own slim web application
/// (Kestrel) when it starts and bridges the engine's services into it. Registered after the plugins, the scheduler and
/// the rules, it starts after them (so the Active plugins' endpoints are known) and stops before them.
/// </summary>
internal sealed class ApiServer(
    IServiceProvider engine,
    EngineServiceCollection engineServices,
    IOptions<ApiOptions> options,
    ILoggerFactory loggerFactory,
    IHostEnvironment? environment = null) : IHostedService, IAsyncDisposable
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("CrmEngine.Api");
    private WebApplication? _app;
    private X509Certificate2? _certificate;

    /// <summary>The addresses Kestrel listens on (with the real port when 0 was configured); empty when disabled or stopped.</summary>
    public IReadOnlyList<Uri> Addresses { get; private set; } = [];

    /// <summary>The web application's services (tests: its endpoints); null when not running.</summary>
    public IServiceProvider? Services => _app?.Services;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            _logger.LogInformation("HTTP API disabled (Api:Enabled=false)");
            return;
        }

        var contentRoot = environment?.ContentRootPath ?? Directory.GetCurrentDirectory();
        var urls = ApiAddresses.Split(settings.Urls).Select(u => new Uri(u)).ToList();
        if (urls.Any(u => u.Scheme == Uri.UriSchemeHttps))
        {
            _certificate = LoadCertificate(settings.Certificate, contentRoot);
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "CrmEngine.Api",
            ContentRootPath = contentRoot,
            Args = [],
        });
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = settings.MaxRequestBodyBytes;
            foreach (var url in urls)
            {
                Listen(kestrel, url);
            }
        });
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.Configure<JsonOptions>(o => ApiJson.Configure(o.SerializerOptions));
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ApiPipeline.DescribeStatus);
        builder.Services.AddSingleton(engine.GetRequiredService<Keys.ApiKeyStore>());
        ApiAuthentication.AddSchemes(builder.Services, engine, contentRoot); // API keys, and bearer tokens when Api:Jwt is set
        // The policies name no scheme: UseAuthentication already ran the default (key or token) scheme once per request, and a
        // scheme named in a policy would be authenticated again (and a refusal logged twice).
        var authorization = builder.Services.AddAuthorizationBuilder();
        foreach (var scope in Enum.GetValues<Abstractions.Http.ApiScope>())
        {
            authorization.AddPolicy(ApiPolicies.For(scope), p => p.RequireAuthenticatedUser().AddRequirements(new ScopeRequirement(scope)));
        }

        builder.Services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, ProblemAuthorizationResultHandler>();
        ApiOpenApi.Add(builder.Services);
        EngineServiceBridge.Forward(engineServices.Services, engine, builder.Services, _logger);

        var app = builder.Build();
        ApiPipeline.Configure(app, engine, _logger);
        await app.StartAsync(cancellationToken);
        _app = app;

        Addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses
            .Select(a => new Uri(a.Replace("[::]", "localhost", StringComparison.Ordinal)))
            .ToList() ?? [];
        _logger.LogInformation("HTTP API listening on {ApiAddresses} (OpenAPI at /openapi/v1.json, health at /health)",
            string.Join(", ", Addresses.Select(a => a.ToString().TrimEnd('/'))));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is { } app)
        {
            _app = null;
            Addresses = [];
            await app.StopAsync(cancellationToken);
            await app.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.DisposeAsync();
        }

        _certificate?.Dispose();
    }

    private void Listen(KestrelServerOptions kestrel, Uri url)
    {
        void Configure(ListenOptions listen)
        {
            if (url.Scheme == Uri.UriSchemeHttps)
            {
                listen.UseHttps(_certificate!);
            }
        }

        var host = url.Host.Trim('[', ']');
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            kestrel.ListenLocalhost(url.Port, Configure);
        }
        else if (host is "*" or "+")
        {
            kestrel.ListenAnyIP(url.Port, Configure);
        }
        else if (IPAddress.TryParse(host, out var address))
        {
            kestrel.Listen(address, url.Port, Configure);
        }
        else
        {
            throw new OptionsValidationException(ApiOptions.Section, typeof(ApiOptions),
                [$"Api:Urls: '{url}' names the host '{host}'; use an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost"]);
        }
    }

    private static X509Certificate2 LoadCertificate(ApiCertificateOptions certificate, string contentRoot)
    {
        var path = Path.GetFullPath(certificate.Path!, contentRoot);
        try
        {
            var loaded = X509CertificateLoader.LoadPkcs12FromFile(path, certificate.Password);
            if (!loaded.HasPrivateKey)
            {
                loaded.Dispose();
                throw new OptionsValidationException(ApiOptions.Section, typeof(ApiOptions),
                    [$"Api:Certificate:Path: {path} holds no private key; export the certificate with its key (.pfx)"]);
            }

            return loaded;
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            // The password never appears in the message.
            throw new OptionsValidationException(ApiOptions.Section, typeof(ApiOptions),
                [$"Api:Certificate:Path: {path} cannot be read as a PFX certificate (wrong Api:Certificate:Password, or not a .pfx file): {ex.Message}"]);
        }
    }
}
